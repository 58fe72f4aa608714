import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NodeConfigSchema, type NodeConfig, type PlanTiming } from '../../nodes/config.ts'
import type { NodeEvent, NodeEventBody } from '../../nodes/events.ts'
import { privateKeyFromSeed } from '../../nodes/libp2p.ts'
import { peerIdOfAddr } from '../../nodes/util.ts'
import { freePort } from '../host/free-port.ts'
import { toRealMs } from '../../nodes/timing.ts'
import type { NodeHandle } from '../../nodes/commands.ts'
import { expandNames, type NodeSpec, type Scenario } from '../../scenarios/schema.ts'
import type { AssertionResult, FaultRecord, Matrix, StepMatrix, StepRecord, SweepPoint } from '../../scenarios/record.ts'
import type { Link } from '../faults/link-proxies.ts'
import type { SupervisedNode } from '../backends/supervise.ts'
import { IMAGE_PORT, type Backend, type StartedBlackhole, type StartedNode } from '../backends/backend.ts'

/** An external node's process or container, when chiral-sim started it from the scenario's command or image. */
export interface StartedExternal {
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>
  /** SIGKILL: the crash of the plan's Test 5. */
  kill(): Promise<void>
}

/** One node of a scenario run: its spec, its fixed config and address, and whatever is running now. */
export interface RunNode {
  readonly name: string
  readonly spec: NodeSpec
  /** Undefined for blackholes and external nodes, which are not chiral-sim nodes. */
  config: NodeConfig | undefined
  /** Peers: the bootstrap node names to try, in failover order. */
  bootstrapRefs: string[]
  peerId: string | undefined
  /** The address peers dial: fixed before the first start, so a never-started bootstrap is a closed port. */
  address: string | undefined
  running: StartedNode | undefined
  blackhole: StartedBlackhole | undefined
  /** An external node's process, when chiral-sim started it from the scenario's command. */
  external: StartedExternal | undefined
  unsubscribe: (() => void) | undefined
  /** The output of each start of the node (process, container or external), for the record. */
  outputs: Array<() => string>
}

/** A failed expectation that must end the scenario (a `wait` that never held). */
export class ScenarioAbort extends Error {
  override readonly name = 'ScenarioAbort'
}

export class RunContext {
  readonly scenario: Scenario
  readonly backend: Backend
  readonly seed: number
  readonly timeScale: number
  readonly signal: AbortSignal
  /** The scenario file's folder: relative paths in an external node's command are resolved from here. */
  readonly baseDir: string
  readonly nodes = new Map<string, RunNode>()
  readonly events: NodeEvent[] = []
  readonly assertions: AssertionResult[] = []
  readonly steps: StepRecord[] = []
  readonly files = new Map<string, { cid: string, owner: string }>()
  /** The last matrix (what older reports read)… */
  matrix: Matrix | undefined
  /** …and every matrix step's, in order. */
  readonly matrices: StepMatrix[] = []
  currentStep = 0
  /** Fault proxies, one per ordered pair of nodes, when the scenario injects faults. */
  readonly links = new Map<string, Link>()
  readonly faults: FaultRecord[] = []
  readonly activeFaults = new Map<string, Array<{ link: Link, toxic?: string, record: number }>>()
  readonly sweep: SweepPoint[] = []
  /** Supervised bootstraps (plan Solution #4), stopped before the nodes at teardown. */
  readonly supervised = new Map<string, SupervisedNode>()
  readonly recoveries: Array<{ node: string, failedAt: number, detectedAt: number | null, recoveredAt: number | null, automatic: boolean }> = []
  /** Timers the run set (fault durations): cleared at teardown. */
  readonly timers = new Set<NodeJS.Timeout>()
  /** Sequence numbers of the events the runner reports on a node's behalf (supervisors, external nodes). */
  readonly #emitted = new Map<string, number>()

  constructor (init: { scenario: Scenario, backend: Backend, seed: number, timeScale: number, signal: AbortSignal, baseDir?: string | undefined }) {
    this.scenario = init.scenario
    this.backend = init.backend
    this.seed = init.seed
    this.timeScale = init.timeScale
    this.signal = init.signal
    this.baseDir = init.baseDir ?? process.cwd()
  }

  /** Plan milliseconds → the milliseconds this run actually waits. */
  scaled (planMs: number): number {
    return toRealMs(planMs, this.timeScale)
  }

  node (name: string): RunNode {
    const node = this.nodes.get(name)
    if (node == null) throw new Error(`unknown node "${name}"`)
    return node
  }

  /** The running chiral-sim node's handle, or a clear error naming the node's state. */
  handle (name: string): NodeHandle {
    const node = this.node(name)
    if (node.spec.role === 'external' || node.spec.role === 'blackhole') {
      throw new Error(`node "${name}" is ${node.spec.role === 'external' ? 'an external black box' : 'a blackhole'} without a control channel: check it through the peers (connect, health, sees, reachable)`)
    }
    if (node.running == null) throw new Error(`node "${name}" is not running (start it first)`)
    return node.running.handle
  }

  nameOfPeer (peerId: string): string {
    for (const n of this.nodes.values()) if (n.peerId === peerId) return n.name
    return peerId
  }

  expect (a: { id: string, description: string, expected: unknown, actual: unknown, passed: boolean, planRef?: string | undefined }): boolean {
    this.assertions.push({
      id: a.id,
      description: a.description,
      ...(a.planRef != null ? { planRef: a.planRef } : {}),
      expected: typeof a.expected === 'string' ? a.expected : JSON.stringify(a.expected),
      actual: typeof a.actual === 'string' ? a.actual : JSON.stringify(a.actual),
      passed: a.passed,
      step: this.currentStep,
      at: Date.now()
    })
    return a.passed
  }

  record (ev: NodeEvent): void {
    this.events.push(ev)
  }

  /** An event the runner observed about `node` (which cannot report it itself), numbered per node. */
  emit (node: string, body: NodeEventBody, at: number = Date.now()): void {
    const seq = this.#emitted.get(node) ?? 0
    this.#emitted.set(node, seq + 1)
    this.record({ ...body, seq, time: at, node } as NodeEvent)
  }
}

/**
 * The node configs of a scenario: deterministic identities from the scenario name, the seed and the node name,
 * plan timing with the scenario's overrides and the run's timeScale.
 */
export async function buildNodes (ctx: RunContext, opts: { fixAddresses: boolean }): Promise<void> {
  const { scenario } = ctx
  const bootstrapNames = scenario.nodes.filter(n => n.role === 'bootstrap' || n.role === 'blackhole' || n.role === 'external').map(n => n.name)
  for (const spec of scenario.nodes) {
    const names = expandNames([spec])
    for (const name of names) {
      let config: NodeConfig | undefined
      let peerId: string | undefined
      if (spec.role === 'bootstrap' || spec.role === 'peer') {
        const identitySeed = `${scenario.name}/${ctx.seed}/${name}`
        const timing: Partial<PlanTiming> = { ...scenario.timing, ...spec.timing, timeScale: ctx.timeScale }
        const dht = spec.role === 'peer' ? withExternalDhtProtocol(scenario, spec) : spec.dht
        config = NodeConfigSchema.parse({
          name,
          role: spec.role,
          transport: ctx.backend.transport,
          identitySeed,
          timing,
          ...(dht != null ? { dht } : {}),
          ...(spec.role === 'bootstrap' && spec.maxPeers != null ? { maxPeers: spec.maxPeers } : {}),
          ...(spec.role === 'peer' && spec.agentVersion != null ? { agentVersion: spec.agentVersion } : {}),
          ...(spec.role === 'peer' && spec.autoMonitor != null ? { autoMonitor: spec.autoMonitor } : {}),
          ...(spec.role === 'peer' && spec.autoVerify != null ? { autoVerify: spec.autoVerify } : {})
        })
        peerId = peerIdFromPrivateKey(await privateKeyFromSeed(identitySeed)).toString()
        // Bootstraps always get a fixed address (a never-started one is a closed port); with fault proxies every
        // node does, since each link's proxy forwards to it.
        if (spec.role === 'bootstrap' || opts.fixAddresses) {
          const { listen } = await ctx.backend.place(config, ctx.signal)
          config = { ...config, listen }
        }
      }
      let address = config?.listen?.[0] != null && peerId != null ? `${config.listen[0]}/p2p/${peerId}` : undefined
      if (spec.role === 'external') {
        // One port for the whole run, so a restarted external node comes back where the peers look for it.
        address = spec.multiaddr.includes('{host}') ? spec.multiaddr.replace('{host}', await externalHost(ctx, spec)) : spec.multiaddr
        if (address.includes('{port}')) {
          const port = spec.image != null ? IMAGE_PORT : await freePort({ host: /^\/ip4\/([^/]+)/.exec(address)?.[1], signal: ctx.signal })
          address = address.replace('{port}', String(port))
        }
        peerId = peerIdOfAddr(address)
      }
      // Peers default to every bootstrap of the scenario, in declaration order (failover order).
      const bootstrapRefs = spec.role === 'peer' ? spec.bootstraps ?? bootstrapNames : []
      ctx.nodes.set(name, { name, spec, config, bootstrapRefs, peerId, address, running: undefined, blackhole: undefined, external: undefined, unsubscribe: undefined, outputs: [] })
    }
  }
}

/**
 * A peer that names no DHT protocol and bootstraps from an external node speaks that node's protocol: the
 * external node was given as "the real network's bootstrap", and a peer on another protocol would never be
 * admitted by it (cause 7). A peer that names a protocol keeps it, so the mismatch can still be reproduced.
 */
function withExternalDhtProtocol (scenario: Scenario, spec: Extract<NodeSpec, { role: 'peer' }>): Extract<NodeSpec, { role: 'peer' }>['dht'] {
  if (spec.dht?.protocol != null) return spec.dht
  const refs = spec.bootstraps ?? scenario.nodes.filter(n => n.role !== 'peer').map(n => n.name)
  const external = scenario.nodes.find((n): n is Extract<NodeSpec, { role: 'external' }> => n.role === 'external' && refs.includes(n.name))
  return external == null ? spec.dht : { ...spec.dht, protocol: external.dhtProtocol }
}

/** An image node listens on its own container address, a command on this machine where the run's nodes reach it. */
async function externalHost (ctx: RunContext, spec: Extract<NodeSpec, { role: 'external' }>): Promise<string> {
  if (spec.image == null) return await ctx.backend.hostAddress(ctx.signal)
  if (ctx.backend.placeImage == null) throw new Error(`external node "${spec.name}" is an image: run the scenario with --mode docker`)
  return await ctx.backend.placeImage(spec.name, ctx.signal)
}
