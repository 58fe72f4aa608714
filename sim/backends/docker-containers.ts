import { execFileSync } from 'node:child_process'
import type { ContainerRuntimeClient, StartedNetwork, StartedTestContainer } from 'testcontainers'
import { onExit } from '../host/exit-hook.ts'
import { ignoreStatus, type Dockerode } from './docker-engine.ts'
import { NODE_LABEL, RUN_LABEL } from './docker-reaper.ts'
import { ownerLabels } from './owner.ts'

/**
 * The containers of one docker run: named and labelled for the reaper, tracked from the moment the engine gives
 * them an ID, removed by ID, by name (a start that failed half-way) or by label (what bookkeeping missed), and by
 * the docker CLI from the exit hook when no promise can settle any more.
 */
export class RunContainers {
  readonly client: ContainerRuntimeClient
  readonly runId: string
  readonly network: StartedNetwork
  /** Every container this run created and has not removed yet: what the exit hook removes. */
  readonly #ids = new Set<string>()
  readonly #owner = ownerLabels()
  readonly #offExit: () => void
  #serial = 0

  constructor (client: ContainerRuntimeClient, runId: string, network: StartedNetwork) {
    this.client = client
    this.runId = runId
    this.network = network
    this.#offExit = onExit(() => { this.#removeSynchronously() })
  }

  get docker (): Dockerode {
    return this.client.container.dockerode
  }

  labels (node: string): Record<string, string> {
    return { [RUN_LABEL]: this.runId, [NODE_LABEL]: node, ...this.#owner }
  }

  /** A name no other container of the run has: a restart's container is a new one. */
  nextName (node: string): string {
    return `chiral-sim-${this.runId}-${node}-${++this.#serial}`
  }

  /**
   * Starts a container, tracking its ID for the exit hook as soon as it has one. An abort does not wait for
   * testcontainers (which cannot be cancelled): the caller gets the abort, and the container is removed when it
   * turns up.
   */
  async start (container: { start: () => Promise<StartedTestContainer> }, name: string, signal: AbortSignal): Promise<StartedTestContainer> {
    signal.throwIfAborted()
    const starting = container.start().then(started => {
      this.#ids.add(started.getId())
      return started
    })
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason instanceof Error ? signal.reason : new Error(`start of ${name} was aborted`)) }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([starting, aborted])
    } catch (err) {
      if (signal.aborted) {
        // The start goes on without us: whatever it creates is removed when it turns up.
        void starting.then(async s => { await this.remove(s.getId()) }, async () => { await this.#removeByName(name) })
      } else {
        // A failed start may have created the container without returning it, so it goes by name.
        await this.#removeByName(name)
      }
      throw err
    } finally {
      if (onAbort != null) signal.removeEventListener('abort', onAbort)
    }
  }

  async remove (id: string): Promise<void> {
    await this.docker.getContainer(id).remove({ force: true }).catch(ignoreStatus(404, 409))
    this.#ids.delete(id)
  }

  /** A container removed by someone else (a node's own stop): the exit hook has nothing left to do for it. */
  forget (id: string): void {
    this.#ids.delete(id)
  }

  /** Whatever is left (pause containers, a container whose start failed half-way) goes by label, not by bookkeeping. */
  async removeAll (): Promise<void> {
    const leftovers = await this.docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${this.runId}`] } }).catch(() => [])
    await Promise.allSettled([...new Set([...this.#ids, ...leftovers.map(c => c.Id)])].map(async id => { await this.remove(id) }))
  }

  /** Once the run is cleaned up normally, the exit hook has nothing to do. */
  release (): void {
    this.#offExit()
  }

  async #removeByName (name: string): Promise<void> {
    await this.docker.getContainer(name).remove({ force: true }).catch(ignoreStatus(404, 409))
  }

  /**
   * The 'exit' hook: no promise can settle any more, so the docker CLI (which honours DOCKER_HOST as testcontainers
   * does) removes what is left. Best effort, bounded; a normal run has already removed everything.
   */
  #removeSynchronously (): void {
    const ids = [...this.#ids]
    const run = (args: string[]): void => {
      try { execFileSync('docker', args, { stdio: 'ignore', timeout: 10_000 }) } catch { /* nothing more can be done here */ }
    }
    if (ids.length > 0) run(['rm', '--force', ...ids])
    run(['network', 'rm', this.network.getName()])
  }
}
