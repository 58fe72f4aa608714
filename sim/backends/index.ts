/**
 * @packageDocumentation
 *
 * Backends: how a mode starts a node and reaches its commands, nothing more (backend.ts is the contract).
 * memory and tcp run nodes in the harness's process; shards spread them over a few processes (one per core), each
 * running many nodes behind their own control channels; process runs each as a child process (nodes/main.ts) behind
 * its authenticated control channel; docker runs each in a container of the node image on a private run network
 * (and third-party images as external nodes; docker.ts composes docker-*.ts, one file per concept: engine,
 * images, the run's containers, slots, chiral node, image node, blackhole, probes, reaper); swarm spreads them over
 * a Docker Swarm (swarm/). Backends that supervise share graceful-stop.ts (a remote node's stop), supervise.ts (the
 * supervisor over a backend) and stop-order.ts (supervisors, then nodes, then blackholes at disposal). A scenario
 * never names its backend: the CLI's --mode picks it.
 *
 * @example
 * ```ts
 * import { createBackend } from './index.ts'
 *
 * await using backend = await createBackend('process')
 * const node = await backend.startNode(config, AbortSignal.timeout(30_000))   // config: a NodeConfig
 * await node.handle.call('connectWithTimeout', {})
 * await node.stop()
 * ```
 */
import type { Mode } from '../../scenarios/record.ts'
import type { Backend } from './backend.ts'
import { InProcessBackend } from './in-process.ts'

/** The backend for a mode. Process and docker backends load lazily: the in-process suite never pays for them. */
export async function createBackend (mode: Mode): Promise<Backend> {
  switch (mode) {
    case 'memory':
    case 'tcp':
      return new InProcessBackend(mode)
    case 'process': {
      const { ProcessBackend } = await import('./process.ts')
      return new ProcessBackend()
    }
    case 'docker': {
      const { DockerBackend } = await import('./docker.ts')
      return await DockerBackend.create()
    }
    case 'shards': {
      const { ShardBackend } = await import('./shard/shard.ts')
      return new ShardBackend()
    }
    case 'swarm': {
      const { SwarmBackend } = await import('./swarm/swarm.ts')
      return await SwarmBackend.create()
    }
  }
}

export type { Backend, StartedNode, StartedBlackhole } from './backend.ts'
