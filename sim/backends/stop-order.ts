import type { StartedBlackhole } from './backend.ts'
import type { SupervisedNode } from './supervise.ts'

/**
 * The order a backend stops what it started, shared by every backend whose nodes can be supervised (process,
 * docker, swarm): supervisors first, or they would restart the nodes being stopped; then the nodes (each its
 * graceful stop, then force); then the blackholes. Each stage waits for all its members, and one failure does not
 * keep the others running: the backend's own sweep afterwards (containers by label, services, processes) is the
 * safety net for what failed here.
 */
export async function stopInOrder (started: { supervised: Iterable<SupervisedNode>, nodes: Iterable<AsyncDisposable>, blackholes?: Iterable<StartedBlackhole> }): Promise<void> {
  await Promise.allSettled([...started.supervised].map(async s => { await s.stop() }))
  await Promise.allSettled([...started.nodes].map(async n => { await n[Symbol.asyncDispose]() }))
  await Promise.allSettled([...(started.blackholes ?? [])].map(async b => { await b.close() }))
}
