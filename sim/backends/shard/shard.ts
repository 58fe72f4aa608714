import { fork, type ChildProcess } from 'node:child_process'
import os from 'node:os'
import type { NodeConfig } from '../../../nodes/config.ts'
import { RemoteNode } from '../../../nodes/control/client.ts'
import { generateControlToken } from '../../../nodes/control/token.ts'
import { onExit } from '../../host/exit-hook.ts'
import { freePort } from '../../host/free-port.ts'
import type { Backend, StartedBlackhole, StartedNode } from '../backend.ts'
import { appendTail } from '../output-tail.ts'
import { startLocalBlackhole } from '../local-blackhole.ts'
import { RemoteStartedNode } from '../graceful-stop.ts'
import { stopInOrder } from '../stop-order.ts'
import type { FromShard, ToShard } from './protocol.ts'

/**
 * Nodes spread over shards: a few Node processes (one per core by default), each running many nodes (host.ts), so
 * that one large population uses every core instead of sharing one JavaScript thread, without a process per node.
 * Nodes talk TCP on loopback, also between shards, and the harness reaches each node through its own authenticated
 * control channel, as in process mode: the runner, matrix, faults and reports see the same NodeHandle.
 *
 * Placement is round-robin in start order, and a restarted node goes back to its shard. `kill` ends a node
 * without its `shutdown` command but, as in memory and tcp modes, libp2p still closes its connections: a real
 * SIGKILL needs process mode.
 */

export interface ShardBackendOptions {
  /** Default: the machine's cores. */
  shards?: number
  /** Until a shard is up, or a node in it started; default 60 s (a loaded shard starts nodes one after another). */
  startTimeoutMs?: number
  /** A shard's V8 heap limit in MiB; default 4096 (1000 nodes took about 3 GiB in one process). */
  maxOldSpaceMiB?: number
  /**
   * Frames an Error captures in a shard (V8's --stack-trace-limit); default V8's 10. js-libp2p builds errors as
   * control flow (one per noise frame it waits for), so 0 saved 31 % of an in-process population's CPU at N = 100
   * (bench/RESULTS.md) at the price of stack-less errors in the shard's output.
   */
  stackTraceLimit?: number
}

/** The options with their defaults filled in. */
type ShardSettings = Required<Omit<ShardBackendOptions, 'stackTraceLimit'>> & Pick<ShardBackendOptions, 'stackTraceLimit'>

const HOST = new URL('./host.ts', import.meta.url)
const STDERR_KEEP_CHARS = 16 * 1024
const EXIT_GRACE_MS = 10_000

class Shard {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  stderr = ''
  exited = false
  readonly #pending = new Map<number, { resolve: (m: FromShard) => void, reject: (e: Error) => void }>()
  #nextId = 0

  constructor (index: number, options: ShardSettings) {
    // Its own process group: a terminal's Ctrl-C reaches the harness only, which still needs the shard to stop nodes.
    this.child = fork(HOST, [], {
      execArgv: [`--max-old-space-size=${options.maxOldSpaceMiB}`, ...(options.stackTraceLimit != null ? [`--stack-trace-limit=${options.stackTraceLimit}`] : [])],
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, DEBUG_COLORS: 'no', CHIRAL_SHARD: String(index) }
    })
    this.child.stderr?.on('data', (d: Buffer) => { this.stderr = appendTail(this.stderr, d.toString(), STDERR_KEEP_CHARS) })
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`shard ${index} did not start within ${options.startTimeoutMs} ms${this.tail()}`)) }, options.startTimeoutMs)
      this.child.once('message', () => { clearTimeout(timer); resolve() })
      this.child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`shard ${index} exited (${signal ?? `code ${code}`}) before it was ready${this.tail()}`)) })
    })
    this.ready.catch(() => {})
    this.child.on('message', (m: FromShard) => {
      if (m.type === 'ready') return
      const p = this.#pending.get(m.id)
      this.#pending.delete(m.id)
      if (m.type === 'failed') p?.reject(new Error(m.error))
      else p?.resolve(m)
    })
    this.child.on('exit', (code, signal) => {
      this.exited = true
      const why = new Error(`shard ${index} exited (${signal ?? `code ${code}`})${this.tail()}`)
      for (const p of this.#pending.values()) p.reject(why)
      this.#pending.clear()
    })
  }

  tail (): string {
    const t = this.stderr.trim()
    return t === '' ? '' : `; its last output: ${t.slice(-600)}`
  }

  async request (message: Omit<Extract<ToShard, { type: 'start' }>, 'id'> | Omit<Extract<ToShard, { type: 'stop' }>, 'id'>, signal: AbortSignal): Promise<FromShard> {
    await this.ready
    if (this.exited) throw new Error(`the shard is gone${this.tail()}`)
    signal.throwIfAborted()
    const id = this.#nextId++
    return await new Promise<FromShard>((resolve, reject) => {
      const onAbort = (): void => { this.#pending.delete(id); reject(signal.reason as Error) }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#pending.set(id, {
        resolve: m => { signal.removeEventListener('abort', onAbort); resolve(m) },
        reject: e => { signal.removeEventListener('abort', onAbort); reject(e) }
      })
      this.child.send({ ...message, id } as ToShard)
    })
  }

  /** Closing the channel makes the shard stop its nodes and exit; SIGKILL if it does not within the grace. */
  async close (): Promise<void> {
    if (this.exited) return
    const gone = new Promise<void>(resolve => this.child.once('exit', () => { resolve() }))
    if (this.child.connected) this.child.disconnect()
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, EXIT_GRACE_MS)
    await gone
    clearTimeout(timer)
  }
}

class ShardNode extends RemoteStartedNode {
  readonly handle: RemoteNode
  readonly peerId: string
  readonly multiaddrs: string[]
  readonly #shard: Shard
  readonly #name: string
  readonly #onGone: () => void

  constructor (shard: Shard, config: NodeConfig, started: Extract<FromShard, { type: 'started' }>, token: string, onGone: () => void) {
    super()
    this.#shard = shard
    this.#name = config.name
    this.peerId = started.peerId
    this.multiaddrs = started.multiaddrs
    this.handle = new RemoteNode({ name: config.name, role: config.role, url: started.control, token })
    this.#onGone = onGone
  }

  /** The shard's output: its nodes share it. */
  output (): string {
    return this.#shard.stderr
  }

  protected async graceful (): Promise<void> {
    // Through the node's own channel first, as a process-mode node's goodbye; the shard's stop makes sure of it.
    await this.handle.call('shutdown', {}, { signal: AbortSignal.timeout(EXIT_GRACE_MS / 2) }).catch(() => {})
    await this.abrupt()
  }

  protected async abrupt (): Promise<void> {
    try {
      await this.#shard.request({ type: 'stop', name: this.#name }, AbortSignal.timeout(EXIT_GRACE_MS))
    } catch (err) {
      // A shard that is gone took its nodes with it.
      if (!this.#shard.exited) throw err
    } finally {
      this.#onGone()
    }
  }
}

export class ShardBackend implements Backend {
  readonly mode = 'shards' as const
  readonly transport = 'tcp' as const
  readonly #options: ShardSettings
  readonly #shards: Shard[] = []
  /** Where each node name runs (a restart goes back there). */
  readonly #placement = new Map<string, number>()
  readonly #nodes = new Set<ShardNode>()
  readonly #handles = new Set<RemoteNode>()
  readonly #blackholes = new Set<StartedBlackhole>()
  readonly #unhook: () => void
  #disposed = false

  constructor (options: ShardBackendOptions = {}) {
    this.#options = {
      shards: Math.max(1, options.shards ?? os.availableParallelism()),
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
      maxOldSpaceMiB: options.maxOldSpaceMiB ?? 4096,
      ...(options.stackTraceLimit != null ? { stackTraceLimit: options.stackTraceLimit } : {})
    }
    // At the harness's exit a signal is all there is time for; a SIGKILLed harness closes the IPC channels instead.
    this.#unhook = onExit(() => { for (const s of this.#shards) { try { s.child.kill('SIGKILL') } catch { /* gone */ } } })
  }

  get shardCount (): number {
    return this.#options.shards
  }

  /** The shards' process ids, started so far (for tests and the bench's memory figures). */
  get pids (): number[] {
    return this.#shards.map(s => s.child.pid).filter((p): p is number => p != null)
  }

  async place (_config: NodeConfig, signal: AbortSignal): Promise<{ listen: string[] }> {
    return { listen: [`/ip4/127.0.0.1/tcp/${await freePort({ signal })}`] }
  }

  async startNode (config: NodeConfig, signal: AbortSignal): Promise<StartedNode> {
    if (this.#disposed) throw new Error('shard backend is disposed')
    const index = this.#placement.get(config.name) ?? this.#placement.size % this.#options.shards
    this.#placement.set(config.name, index)
    const shard = this.#shard(index)
    const token = generateControlToken()
    const effective: NodeConfig = { ...config, transport: 'tcp' }
    const started = await shard.request({ type: 'start', config: effective, token }, AbortSignal.any([signal, AbortSignal.timeout(this.#options.startTimeoutMs)]))
    if (started.type !== 'started') throw new Error(`shard ${index} answered ${started.type} to a start`)
    const node: ShardNode = new ShardNode(shard, effective, started, token, () => { this.#nodes.delete(node) })
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

  #shard (index: number): Shard {
    // Started on first use, in order: a small scenario on a many-core machine starts only the shards it fills.
    while (this.#shards.length <= index) this.#shards.push(new Shard(this.#shards.length, this.#options))
    return this.#shards[index]!
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    this.#disposed = true
    await stopInOrder({ supervised: [], nodes: this.#nodes, blackholes: this.#blackholes })
    await Promise.allSettled([...this.#handles].map(async h => { await h.close() }))
    await Promise.allSettled(this.#shards.map(async s => { await s.close() }))
    this.#unhook()
    this.#nodes.clear()
    this.#handles.clear()
    this.#blackholes.clear()
  }
}
