import { LocalNode } from '../../nodes/node.ts'
import { defaultListen } from '../../nodes/libp2p.ts'
import { startBlackhole } from '../host/blackhole.ts'
import type { NodeConfig } from '../../nodes/config.ts'
import { freePort } from '../host/free-port.ts'
import type { ForeignPeerImplementation } from '../../scenarios/reference-peer.ts'
import { spawnReferencePeer } from './reference-peer.ts'
import type { Backend, StartedBlackhole, StartedNode } from './backend.ts'

/**
 * Nodes as LocalNode objects in this process, on the memory transport or on loopback TCP. The fastest mode, and
 * the one the built-in suite uses; it cannot kill a process, so `kill` stops the node without waiting for peers.
 */
/** Memory listen names are process-global: a counter keeps concurrent scenarios' blackholes apart. */
let blackholes = 0

export class InProcessBackend implements Backend {
  readonly mode: 'memory' | 'tcp'
  readonly transport: 'memory' | 'tcp'
  readonly #running = new Set<AsyncDisposable>()

  constructor (mode: 'memory' | 'tcp') {
    this.mode = mode
    this.transport = mode
  }

  async place (config: NodeConfig): Promise<{ listen: string[] }> {
    if (this.transport === 'memory') return { listen: defaultListen({ ...config, transport: 'memory' }) }
    return { listen: [`/ip4/127.0.0.1/tcp/${await freePort()}`] }
  }

  async startNode (config: NodeConfig): Promise<StartedNode> {
    const node = await LocalNode.start({ ...config, transport: this.transport })
    const started: StartedNode = {
      handle: node,
      peerId: node.peerId.toString(),
      multiaddrs: node.multiaddrs(),
      stop: async () => { await node.stop(); this.#running.delete(started) },
      kill: async () => { await node.stop(); this.#running.delete(started) },
      [Symbol.asyncDispose]: async () => { await started.stop() }
    }
    this.#running.add(started)
    return started
  }

  /** A peer of another implementation is a process even here: tcp mode runs it on loopback like a chiral node's peer. */
  async startReferencePeer (implementation: ForeignPeerImplementation, config: NodeConfig, signal: AbortSignal): Promise<StartedNode> {
    if (this.transport === 'memory') throw new Error(`${implementation} peer "${config.name}" is a process reached over TCP: run the scenario with --mode tcp or process`)
    const { ProcessNode } = await import('./process.ts')
    const effective: NodeConfig = { ...config, transport: 'tcp' }
    const child = await spawnReferencePeer(implementation, effective, { startTimeoutMs: 30_000, signal })
    const node = new ProcessNode(effective, child, 10_000, gone => { this.#running.delete(gone) })
    this.#running.add(node)
    return node
  }

  async hostAddress (): Promise<string> {
    if (this.transport === 'memory') throw new Error('memory-transport nodes cannot reach a TCP listener: run scenarios with fault proxies or external nodes with --mode tcp, process or docker')
    return '127.0.0.1'
  }

  async startBlackhole (name: string): Promise<StartedBlackhole> {
    const hole = await startBlackhole({ transport: this.transport, name: `${name}-${process.pid}-${++blackholes}` })
    const started: StartedBlackhole = {
      multiaddr: hole.multiaddr,
      close: async () => { await hole.close(); this.#running.delete(started) },
      [Symbol.asyncDispose]: async () => { await started.close() }
    }
    this.#running.add(started)
    return started
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await Promise.allSettled([...this.#running].map(async r => { await r[Symbol.asyncDispose]() }))
    this.#running.clear()
  }
}
