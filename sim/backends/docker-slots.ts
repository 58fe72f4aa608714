import { isIP } from 'node:net'
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers'
import { freePort } from '../host/free-port.ts'
import { CONTROL_PORT, LIBP2P_PORT, NODE_BINARY_IN_IMAGE, PAUSE_READY } from './docker-image.ts'
import { capture, engineIsLocal, isPortTaken, literalAddress, PublishingContainer } from './docker-engine.ts'
import type { RunContainers } from './docker-containers.ts'

/**
 * A node's slot: a "pause" container that owns the network namespace (the IP on the run network and the published
 * ports), which the node container (or an image node's) joins. Killing the node container therefore leaves a live
 * address that refuses connections — a dead process on a live server, as in the plan — and a restart comes back at
 * the same IP and the same published ports.
 *
 * A local engine publishes on 127.0.0.1 only, at host ports chosen like freePort's (outside the kernel's ephemeral
 * range, which every outgoing connection draws from) and chosen again when one was taken meanwhile. A remote engine
 * must publish where this machine can reach it, so it picks the ports on its own addresses; the control token is
 * what guards them there.
 */

/** Where a node lives on the run's network: the pause container and what it publishes. */
export interface Slot {
  readonly name: string
  readonly pause: StartedTestContainer
  readonly ip: string
  readonly controlUrl: string
  /** The libp2p port as the harness reaches it, for the supervisor's ping. */
  readonly pingHost: string
  readonly pingPort: number
}

/** A published port taken between choosing and binding it (another run, another tool): choose again, this often. */
const PUBLISH_ATTEMPTS = 5

export class Slots {
  readonly #containers: RunContainers
  /** The pause program's image, or none: then the node image sleeps in its place. */
  readonly #pauseImage: string | undefined
  readonly #nodeImage: string
  readonly #startTimeoutMs: number
  readonly #slots = new Map<string, Promise<Slot>>()

  constructor (containers: RunContainers, images: { node: string, pause: string | undefined }, startTimeoutMs: number) {
    this.#containers = containers
    this.#nodeImage = images.node
    this.#pauseImage = images.pause
    this.#startTimeoutMs = startTimeoutMs
  }

  /** The node's slot, created on first use and kept for the run: every start of the node lands in it. */
  async get (name: string, signal: AbortSignal): Promise<Slot> {
    let slot = this.#slots.get(name)
    if (slot == null) {
      slot = this.#create(name, signal)
      this.#slots.set(name, slot)
      // A failed slot must not poison the name: the next start tries again.
      slot.catch(() => { this.#slots.delete(name) })
    }
    return await slot
  }

  /** Forgets the slots (their pause containers go with the run's containers). */
  clear (): void {
    this.#slots.clear()
  }

  async #create (name: string, signal: AbortSignal): Promise<Slot> {
    const containers = this.#containers
    const containerName = `chiral-sim-${containers.runId}-${name}-net`
    const local = await engineIsLocal(containers.client)
    for (let attempt = 1; ; attempt++) {
      const ports = local ? { control: await freePort({ signal }), libp2p: await freePort({ signal }) } : undefined
      let container = new PublishingContainer(this.#pauseImage ?? this.#nodeImage)
        .withName(containerName)
        .withLabels(containers.labels(name))
        .withNetwork(containers.network)
        .withExposedPorts(
          ports != null ? { container: CONTROL_PORT, host: ports.control } : CONTROL_PORT,
          ports != null ? { container: LIBP2P_PORT, host: ports.libp2p } : LIBP2P_PORT
        )
        .withWaitStrategy(Wait.forLogMessage(PAUSE_READY))
        .withStartupTimeout(this.#startTimeoutMs)
      if (local) container = container.publishOn('127.0.0.1')
      if (this.#pauseImage == null) {
        // No static pause program for this architecture: the node image sleeping does the same job, only heavier.
        container = container
          .withEntrypoint([NODE_BINARY_IN_IMAGE, '-e', `process.on("SIGTERM",()=>process.exit(0));console.log(${JSON.stringify(PAUSE_READY)});setInterval(()=>{},1<<30)`])
          .withCommand([])
      }
      let pause: StartedTestContainer
      try {
        pause = await containers.start(container, containerName, signal)
      } catch (err) {
        if (ports != null && attempt < PUBLISH_ATTEMPTS && isPortTaken(err) && !signal.aborted) continue
        throw err
      }
      // An IP literal: the node's control server refuses host names other than localhost (DNS rebinding).
      const host = local ? '127.0.0.1' : await literalAddress(pause.getHost())
      return {
        name,
        pause,
        ip: pause.getIpAddress(containers.network.getName()),
        controlUrl: `http://${isIP(host) === 6 ? `[${host}]` : host}:${ports?.control ?? pause.getMappedPort(CONTROL_PORT)}`,
        pingHost: host,
        pingPort: ports?.libp2p ?? pause.getMappedPort(LIBP2P_PORT)
      }
    }
  }
}

/** A container of `image` in `slot`'s network namespace, named, labelled for cleanup, its output captured. */
export function inSlot (containers: RunContainers, image: string, slot: Slot, startupTimeoutMs: number): { container: GenericContainer, containerName: string, logs: { text: string } } {
  const logs = { text: '' }
  const containerName = containers.nextName(slot.name)
  const container = new GenericContainer(image)
    .withName(containerName)
    .withLabels(containers.labels(slot.name))
    .withNetworkMode(`container:${slot.pause.getId()}`)
    .withStartupTimeout(startupTimeoutMs)
    .withLogConsumer(stream => { capture(stream, logs) })
  return { container, containerName, logs }
}

/** A multiaddr's protocol for a host as the harness reaches it. */
export function multiaddrHostProto (host: string): 'ip4' | 'ip6' | 'dns4' {
  const family = isIP(host)
  return family === 4 ? 'ip4' : family === 6 ? 'ip6' : 'dns4'
}
