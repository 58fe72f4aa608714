import type { ContainerRuntimeClient } from 'testcontainers'
import { ownerState, type OwnerState } from './owner.ts'

/**
 * The project's own reaper (testcontainers' Ryuk is an image to pull, which this machine cannot): removes the
 * containers and networks of docker-mode runs whose harness died without tearing down. Every docker run calls it
 * before it starts, and `chiral-sim clean` on demand. A live run's resources are never touched; resources whose
 * owner cannot be judged (another machine's, or an older chiral-sim's without owner labels) only with `all`.
 */

export const RUN_LABEL = 'chiral-sim.run'
export const NODE_LABEL = 'chiral-sim.node'
/** Every run network's name starts so (and continues with its run id). */
export const NETWORK_PREFIX = 'chiral-sim-'
/** The engine's label on a swarm task's container. */
const SWARM_TASK_LABEL = 'com.docker.swarm.task.id'

export interface ReapOptions {
  /** Also remove what has no judgeable owner. Only when no other run may be using this engine. */
  all?: boolean
}

export interface ReapResult {
  /** Container names removed. */
  containers: string[]
  /** Network names removed. */
  networks: string[]
  /** Run ids left alone because their owner's liveness cannot be judged (see `all`). */
  unknownRuns: string[]
  /** Failures to remove something that should go (it stays for the next attempt). */
  errors: string[]
}

type Dockerode = ContainerRuntimeClient['container']['dockerode']

export async function reapAbandonedRuns (client: ContainerRuntimeClient, options: ReapOptions = {}): Promise<ReapResult> {
  const docker: Dockerode = client.container.dockerode
  const result: ReapResult = { containers: [], networks: [], unknownRuns: [], errors: [] }
  const unknown = new Set<string>()
  const doomed = (labels: Record<string, string> | undefined): boolean => {
    const state: OwnerState = ownerState(labels)
    if (state === 'unknown' && options.all !== true) unknown.add(labels?.[RUN_LABEL] ?? '?')
    return state === 'dead' || (state === 'unknown' && options.all === true)
  }

  const containers = await docker.listContainers({ all: true, filters: { label: [RUN_LABEL] } })
  // Node containers before the pause containers whose network namespace they share.
  containers.sort((a, b) => Number(a.Names[0]?.endsWith('-net') ?? false) - Number(b.Names[0]?.endsWith('-net') ?? false))
  for (const c of containers) {
    // A running swarm task's container goes with its service (swarm.ts's reaper): removed alone, the service stays
    // and starts another. One that no longer runs is only history, and nothing else removes it once its engine
    // has left the swarm (one stayed for hours after `setup-swarm.sh down`).
    if (c.Labels?.[SWARM_TASK_LABEL] != null && c.State === 'running') continue
    if (!doomed(c.Labels)) continue
    try {
      await docker.getContainer(c.Id).remove({ force: true })
      result.containers.push((c.Names[0] ?? c.Id).replace(/^\//, ''))
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) result.errors.push(`container ${c.Names[0] ?? c.Id}: ${(err as Error).message}`)
    }
  }

  const networks = await docker.listNetworks({ filters: { name: [NETWORK_PREFIX] } })
  for (const n of networks) {
    if (!n.Name.startsWith(NETWORK_PREFIX) || n.Scope === 'swarm') continue
    // A network made before owner labels existed carries none: only `all` removes it, and only once it is empty.
    if (!doomed(n.Labels)) continue
    try {
      await docker.getNetwork(n.Id).remove()
      result.networks.push(n.Name)
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode
      if (status !== 404) result.errors.push(`network ${n.Name}: ${(err as Error).message}`)
    }
  }
  unknown.delete('?')
  result.unknownRuns = [...unknown]
  return result
}
