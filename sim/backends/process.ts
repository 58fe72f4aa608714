import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { startLocalBlackhole } from './local-blackhole.ts'
import type { NodeConfig } from '../../nodes/config.ts'
import { RemoteNode } from '../../nodes/control/client.ts'
import { ChildNode } from '../host/child.ts'
import { probePort, tcpHostPort } from '../../nodes/supervisor/probes.ts'
import type { ProbeResult } from '../../nodes/supervisor/supervisor.ts'
import { freePort } from '../host/free-port.ts'
import type { ForeignPeerImplementation } from '../../scenarios/reference-peer.ts'
import { spawnReferencePeer } from './reference-peer.ts'
import type { StartedBlackhole, StartedNode } from './backend.ts'
import { RemoteStartedNode, shutdownThenForce } from './graceful-stop.ts'
import { superviseWith, type SuperviseOptions, type SupervisedNode, type SupervisingBackend } from './supervise.ts'
import { stopInOrder } from './stop-order.ts'

/**
 * Every node a child process running nodes/main.ts on loopback TCP, driven over its control channel. Unlike the
 * in-process backend, `kill` is a real SIGKILL: sockets reset, nothing says goodbye, the port refuses — the plan's
 * `pkill -9` — and a supervisor can restart a bootstrap as systemd would.
 */

export interface ProcessBackendOptions {
  /** Default `process.execPath`; must be a Node that runs .ts files (22.18+ / 24). */
  nodeBinary?: string
  /** Until a child prints its ready line; default 30 s. */
  startTimeoutMs?: number
  /** Graceful stop budget: half for the shutdown command, half for SIGTERM, then SIGKILL. Default 10 s. */
  stopTimeoutMs?: number
  env?: NodeJS.ProcessEnv
}


export class ProcessNode extends RemoteStartedNode {
  readonly handle: RemoteNode
  readonly peerId: string
  readonly multiaddrs: string[]
  readonly config: NodeConfig
  readonly child: ChildNode
  readonly #stopTimeoutMs: number
  readonly #onGone: (node: ProcessNode) => void

  constructor (config: NodeConfig, child: ChildNode, stopTimeoutMs: number, onGone: (node: ProcessNode) => void) {
    super()
    this.config = config
    this.child = child
    this.peerId = child.ready.peerId
    this.multiaddrs = child.ready.multiaddrs
    this.handle = new RemoteNode({ name: config.name, role: config.role, url: child.ready.control, token: child.ready.token })
    this.#stopTimeoutMs = stopTimeoutMs
    this.#onGone = onGone
  }

  /** Its stderr: a chiral node's stdout carries only its ready line. */
  output (): string {
    return this.child.stderrTail()
  }

  protected async abrupt (): Promise<void> {
    await this.child.kill()
    this.#onGone(this)
  }

  protected async graceful (): Promise<void> {
    if (!this.child.exited) {
      await shutdownThenForce(this.handle, this.#stopTimeoutMs, {
        waitForExit: async ms => await this.child.waitForExit(ms),
        force: async ms => { await this.child.terminate(ms) }
      })
    }
    this.#onGone(this)
  }
}

export class ProcessBackend implements SupervisingBackend {
  readonly mode = 'process' as const
  readonly transport = 'tcp' as const
  readonly #options: Required<Omit<ProcessBackendOptions, 'env' | 'nodeBinary'>> & Pick<ProcessBackendOptions, 'env' | 'nodeBinary'>
  readonly #nodes = new Set<ProcessNode>()
  readonly #blackholes = new Set<StartedBlackhole>()
  readonly #supervised = new Set<SupervisedNode>()
  /** Every control client handed out, killed nodes' included: an open event subscription would retry for minutes. */
  readonly #handles = new Set<RemoteNode>()
  #stateDir: Promise<string> | undefined
  #disposed = false

  constructor (options: ProcessBackendOptions = {}) {
    this.#options = {
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      ...(options.env != null ? { env: options.env } : {}),
      ...(options.nodeBinary != null ? { nodeBinary: options.nodeBinary } : {})
    }
  }

  /** Nodes started and not yet stopped or killed (a restart replaces its entry). */
  get nodes (): ReadonlySet<ProcessNode> {
    return this.#nodes
  }

  async place (_config: NodeConfig, signal: AbortSignal): Promise<{ listen: string[] }> {
    return { listen: [`/ip4/127.0.0.1/tcp/${await freePort({ signal })}`] }
  }

  async startNode (config: NodeConfig, signal: AbortSignal): Promise<ProcessNode> {
    if (this.#disposed) throw new Error('process backend is disposed')
    const effective: NodeConfig = { ...config, transport: 'tcp' }
    const child = await ChildNode.spawn({
      config: effective,
      startTimeoutMs: this.#options.startTimeoutMs,
      signal,
      ...(this.#options.nodeBinary != null ? { nodeBinary: this.#options.nodeBinary } : {}),
      ...(this.#options.env != null ? { env: this.#options.env } : {})
    })
    const node = new ProcessNode(effective, child, this.#options.stopTimeoutMs, gone => { this.#nodes.delete(gone) })
    this.#nodes.add(node)
    this.#handles.add(node.handle)
    return node
  }

  async startReferencePeer (implementation: ForeignPeerImplementation, config: NodeConfig, signal: AbortSignal): Promise<ProcessNode> {
    if (this.#disposed) throw new Error('process backend is disposed')
    const effective: NodeConfig = { ...config, transport: 'tcp' }
    const child = await spawnReferencePeer(implementation, effective, { startTimeoutMs: this.#options.startTimeoutMs, signal, env: this.#options.env })
    const node = new ProcessNode(effective, child, this.#options.stopTimeoutMs, gone => { this.#nodes.delete(gone) })
    this.#nodes.add(node)
    this.#handles.add(node.handle)
    return node
  }

  async hostAddress (): Promise<string> {
    return '127.0.0.1'
  }

  async startBlackhole (name: string, signal: AbortSignal): Promise<StartedBlackhole> {
    signal.throwIfAborted()
    return await startLocalBlackhole('tcp', name, this.#blackholes)
  }

  /**
   * Puts a running node under a Supervisor. Restarts reuse the node's actual listen address, so a bootstrap comes
   * back where peers look for it, even one started on port 0.
   */
  async supervise (node: StartedNode, options: SuperviseOptions = {}): Promise<SupervisedNode> {
    if (!(node instanceof ProcessNode) || !this.#nodes.has(node)) throw new Error('supervise: not a running node of this process backend')
    const listen = node.multiaddrs.map(a => multiaddr(a).decapsulateCode(421).toString())
    const tcp = tcpHostPort(listen[0] ?? '')
    const config: NodeConfig = { ...node.config, listen }
    const historyFile = options.historyFile ?? path.join(await this.#state(), `${config.name}.supervisor.json`)
    return await superviseWith<ProcessNode>(node, config, {
      checkProcess: async n => processProbe(n.child),
      checkPort: async (_n, signal) => await probePort(tcp.host, tcp.port, signal),
      pingAddress: n => n.multiaddrs[0] ?? `${listen[0]}/p2p/${n.peerId}`,
      endedAt: n => n.child.exitedAt,
      startNode: async (config, signal) => await this.startNode(config, signal)
    }, historyFile, options, this.#supervised)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    this.#disposed = true
    await stopInOrder({ supervised: this.#supervised, nodes: this.#nodes, blackholes: this.#blackholes })
    // Anything that resisted a graceful stop gets SIGKILL: a leftover child is worse than a rude goodbye.
    await Promise.allSettled([...this.#nodes].map(async n => { await n.kill() }))
    await Promise.allSettled([...this.#handles].map(async h => { await h.close() }))
    this.#handles.clear()
    this.#supervised.clear()
    this.#nodes.clear()
    this.#blackholes.clear()
    if (this.#stateDir != null) await rm(await this.#stateDir, { recursive: true, force: true })
  }

  async #state (): Promise<string> {
    this.#stateDir ??= mkdtemp(path.join(tmpdir(), 'chiral-sim-process-'))
    return await this.#stateDir
  }
}

function processProbe (child: ChildNode): ProbeResult {
  if (!child.exited) {
    try {
      // Signal 0 checks existence: the 'exit' event can lag a kill by a tick, the kernel does not.
      process.kill(child.pid, 0)
      return { ok: true, detail: `pid ${child.pid}` }
    } catch { /* fall through: gone */ }
  }
  return { ok: false, detail: `pid ${child.pid} is gone (${child.exitStatus ?? 'no exit status yet'})`, ...(child.exitedAt != null ? { since: child.exitedAt } : {}) }
}
