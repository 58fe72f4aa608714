import type { NodeConfig } from '../../nodes/config.ts'
import { RemoteNode } from '../../nodes/control/client.ts'
import { LIBP2P_PORT } from './docker-image.ts'
import { ignoreStatus, waitForExit, type Dockerode } from './docker-engine.ts'
import { RemoteStartedNode, shutdownThenForce } from './graceful-stop.ts'
import type { Slot } from './docker-slots.ts'

/** A chiral node in a container: where it lives on the run's network (its slot), and how it stops. */

export class DockerNode extends RemoteStartedNode {
  readonly handle: RemoteNode
  readonly peerId: string
  readonly multiaddrs: string[]
  readonly config: NodeConfig
  readonly containerId: string
  readonly slot: Slot
  readonly #docker: Dockerode
  readonly #logs: { text: string }
  readonly #stopTimeoutMs: number
  readonly #onGone: (node: DockerNode) => void
  #goneAt: number | undefined

  constructor (init: { config: NodeConfig, containerId: string, slot: Slot, token: string, info: { peerId: string, multiaddrs: string[] }, docker: Dockerode, logs: { text: string }, stopTimeoutMs: number, onGone: (node: DockerNode) => void }) {
    super()
    this.config = init.config
    this.containerId = init.containerId
    this.slot = init.slot
    this.peerId = init.info.peerId
    this.multiaddrs = init.info.multiaddrs
    this.handle = new RemoteNode({ name: init.config.name, role: init.config.role, url: init.slot.controlUrl, token: init.token })
    this.#docker = init.docker
    this.#logs = init.logs
    this.#stopTimeoutMs = init.stopTimeoutMs
    this.#onGone = init.onGone
  }

  /** When this backend stopped or killed the container (and removed it). */
  get goneAt (): number | undefined {
    return this.#goneAt
  }

  /** The container's last output (stdout and stderr). */
  output (): string {
    return this.#logs.text
  }

  protected async abrupt (): Promise<void> {
    const container = this.#docker.getContainer(this.containerId)
    await container.kill({ signal: 'SIGKILL' }).catch(ignoreStatus(404, 409))
    // The moment of the kill, not of the removal: the supervisor reports it as the failure time.
    this.#goneAt = Date.now()
    await waitForExit(container, 5_000)
    await this.#gone()
  }

  protected async graceful (): Promise<void> {
    const container = this.#docker.getContainer(this.containerId)
    await shutdownThenForce(this.handle, this.#stopTimeoutMs, {
      waitForExit: async ms => await waitForExit(container, ms),
      // docker stop: SIGTERM, then SIGKILL after t seconds.
      force: async ms => { await container.stop({ t: Math.max(1, Math.ceil(ms / 1000)) }).catch(ignoreStatus(304, 404)) }
    })
    await this.#gone()
  }

  async #gone (): Promise<void> {
    this.#goneAt ??= Date.now()
    await this.#docker.getContainer(this.containerId).remove({ force: true }).catch(ignoreStatus(404, 409))
    this.#onGone(this)
  }
}

export function listenAddress (slot: Slot): string {
  return `/ip4/${slot.ip}/tcp/${LIBP2P_PORT}`
}
