import { z } from 'zod'
import { AgentVersionSchema, connectionTimeoutMs, DhtOverridesSchema, durationMs, NodeConfigSchema, PlanTimingOverridesSchema, TimeScaleSchema } from '../nodes/config.ts'
import { DiscoveryOverallSchema, ErrorCategorySchema, HealthStatusSchema } from '../nodes/schemas.ts'
import { NodeEventBodySchema } from '../nodes/events.ts'
import { AsymmetryCauseSchema, ModeSchema } from './record.ts'
import { ToxicSpec } from './toxic-spec.ts'
import { PEER_IMPLEMENTATIONS, referencePeerUnsupported } from './reference-peer.ts'

/**
 * A scenario is data: one zod schema validates YAML, JSON and TypeScript scenarios alike, and the JSON Schema that
 * editors use is generated from it. Durations are the plan's real milliseconds; the runner multiplies them by the
 * scenario's timeScale. Tolerances are real milliseconds and are never scaled (they absorb machine jitter).
 */
const Name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use letters, digits, "_", "." or "-" (at most 64)')
/** Every duration is bounded (nodes/config.ts MAX_DURATION_MS): Node fires a timer above 2^31 ms at once. */
const PlanMs = durationMs(0).describe('plan milliseconds, scaled by timeScale at run time')
/** Real milliseconds, never scaled. */
const RealMs = durationMs(0)

/** The largest peer group (`count`, and the CLI's --peers). */
export const MAX_POPULATION = 2_000

/**
 * Text a scenario carries into the run record and so into every report. Bounded so a scenario cannot make the
 * reports huge: together with the file size limit (scenarios/load.ts), a report never copies more than this.
 */
const Text = (max: number) => z.string().max(max, `at most ${max} characters`)
export const TEXT_LIMITS = { title: 200, description: 4_000, label: 200, tag: 40, tags: 20, message: 500 } as const
const Refs = z.array(Name).min(1, 'name at least one node')
const TimingOverrides = PlanTimingOverridesSchema
const eventTypes = NodeEventBodySchema.options.map(o => o.shape.type.value) as [string, ...string[]]
const EventType = z.enum(eventTypes as [string, ...string[]])

const Common = {
  /** Shown in the timeline and reports instead of the generated summary. */
  label: Text(TEXT_LIMITS.label).optional(),
  /** The plan passage this step checks, e.g. "Test 2 / Expected Results". */
  planRef: Text(TEXT_LIMITS.label).optional()
}

const DurationExpect = z.object({
  min: PlanMs.optional(),
  max: PlanMs.optional(),
  /** Expected duration (plan ms, scaled); with `toleranceMs` (real ms, unscaled). */
  approx: PlanMs.optional(),
  toleranceMs: RealMs.default(500)
}).strict().refine(d => d.min != null || d.max != null || d.approx != null, { message: 'give "min", "max" or "approx" (a tolerance alone checks nothing)' })

const BootstrapNode = z.object({
  role: z.literal('bootstrap'),
  name: Name,
  maxPeers: z.number().int().min(1).optional(),
  /**
   * Run the plan's auto-recovery supervisor (Solution #4) on this bootstrap: process alive, port listening, DHT
   * answering a ping within 5 s, restarts with the 3-in-10-minutes rule. Needs process or docker mode.
   */
  supervise: z.boolean().optional(),
  dht: DhtOverridesSchema.optional(),
  timing: TimingOverrides.optional()
}).strict()

const PeerNode = z.object({
  role: z.literal('peer'),
  name: Name,
  /** Expands to `<name>-1` … `<name>-N`: a population of identical peers. */
  count: z.number().int().min(1).max(MAX_POPULATION).optional(),
  /** Bootstrap node names in failover order; default: every bootstrap of the scenario in declaration order. */
  bootstraps: z.array(Name).optional(),
  dht: DhtOverridesSchema.optional(),
  timing: TimingOverrides.optional(),
  /** What identify says this peer is (default: js-libp2p's own): for bootstraps that admit only some agents. */
  agentVersion: AgentVersionSchema.optional(),
  autoMonitor: z.boolean().optional(),
  autoVerify: z.boolean().optional(),
  /**
   * Which node runs this peer: `js` (default) chiral-sim's own, `go` interop/go's go-libp2p node or `rust`
   * interop/rust's rust-libp2p node, serving the same control channel (built by scripts/setup-interop.sh; tcp and
   * process modes). Commands they do not implement (file transfer) end the run with the check named, never a pass.
   */
  implementation: z.enum(PEER_IMPLEMENTATIONS).optional()
}).strict()

/** A listener that accepts connections and never answers: the plan's hung or unroutable bootstrap (Test 2). */
const BlackholeNode = z.object({ role: z.literal('blackhole'), name: Name }).strict()

/** The interop reference nodes of interop/ (rust-libp2p, go-libp2p), built by scripts/setup-interop.sh. */
export const ReferenceImplSchema = z.enum(['rust', 'go'])

/**
 * A bootstrap chiral-sim did not build (a rust-libp2p or go-libp2p binary, or any libp2p node), treated as a black
 * box reached only through libp2p: ping, identify, DHT queries and what the peers see. Started from `command` on
 * this machine (tcp, process and docker modes), from `image` as a container of the run (docker mode), as one of
 * the interop reference nodes (`reference`: a process in tcp and process modes, a container in docker mode), or
 * already running at `multiaddr`.
 */
const ExternalNode = z.object({
  role: z.literal('external'),
  name: Name,
  /**
   * One of the interop reference nodes (interop/bin/chiral-<reference>-node, or CHIRAL_RUST_NODE / CHIRAL_GO_NODE):
   * `command` is then its arguments. In tcp and process modes it runs on this machine as `command` would; in docker
   * mode as a container of the run, from an image made of the binary (chiral-sim-interop-<reference>:<its hash>,
   * built once per binary, no registry), with `{host}` its container address and `{port}` 4001, as `image` runs.
   * The harness adds `--exit-on-stdin-close` to the process, so that it ends with the harness.
   */
  reference: ReferenceImplSchema.optional(),
  /**
   * The command and its arguments. `{port}` becomes a TCP port chosen once per run (kept across restarts), `{host}`
   * the address of this machine the run's nodes reach (127.0.0.1, or the run network's gateway in docker mode) and
   * `{node}` the Node binary running chiral-sim; it runs in the scenario file's folder.
   */
  command: z.array(z.string().min(1)).min(1).optional(),
  /**
   * A local image (never pulled) run as a container on the run's network, in docker mode. `command` is then its
   * arguments, `{host}` its container address and `{port}` 4001; it keeps its address across restarts.
   */
  image: z.string().min(1).optional(),
  /** Text the command prints (stdout or stderr) once it accepts connections; without it, the first libp2p ping answer. */
  readyLine: z.string().min(1).optional(),
  /** Until ready (real ms, not scaled: a binary's start-up does not speed up with the scenario). */
  startTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
  /**
   * Its TCP multiaddr with /p2p/<peer ID>; `{port}` and `{host}` as in `command`. Use `/ip4/{host}/` for a node
   * that docker-mode containers must reach.
   */
  multiaddr: z.string().regex(/^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/([0-9]+|\{port\})\/p2p\/[1-9A-HJ-NP-Za-km-z]{40,}$/,
    'a TCP multiaddr ending in its peer ID, e.g. /ip4/{host}/tcp/{port}/p2p/12D3KooW…'),
  /** The DHT protocol it serves; peers that bootstrap from it and name no protocol of their own use this one. */
  dhtProtocol: z.string().regex(/^\//, 'a DHT protocol name starts with "/", e.g. /ipfs/kad/1.0.0').default('/ipfs/kad/1.0.0')
}).strict().superRefine((n, ctx) => {
  const started = n.command != null || n.image != null || n.reference != null
  if (n.reference != null && n.image != null) ctx.addIssue({ code: 'custom', path: ['image'], message: 'a reference node brings its own image (docker mode builds it from the binary); remove image, or reference to run your own image' })
  if (!started && n.multiaddr.includes('{port}')) ctx.addIssue({ code: 'custom', path: ['multiaddr'], message: '{port} needs a command or an image to give the port to; give the running node\'s real port' })
  if (!started && n.multiaddr.includes('{host}')) ctx.addIssue({ code: 'custom', path: ['multiaddr'], message: '{host} needs a command or an image to give the address to; give the running node\'s real address' })
  if (!started && n.readyLine != null) ctx.addIssue({ code: 'custom', path: ['readyLine'], message: 'readyLine needs a command or an image whose output it is; remove it or add one' })
})

export const NodeSpecSchema = z.discriminatedUnion('role', [BootstrapNode, PeerNode, BlackholeNode, ExternalNode])
export type NodeSpec = z.infer<typeof NodeSpecSchema>

const Primitive = z.union([Text(TEXT_LIMITS.message), z.number(), z.boolean(), z.null()])
/** Matches an event of `type` on `node` whose fields (dot paths, e.g. "health.isReachable") equal `where`. */
const EventMatch = z.object({
  node: Name,
  type: EventType,
  where: z.record(z.string(), Primitive).optional()
}).strict()

export const ConditionSchema = z.union([
  z.object({ routingTable: z.object({ node: Name, minPeers: z.number().int().min(0) }).strict() }).strict(),
  z.object({ health: z.object({ node: Name, status: HealthStatusSchema }).strict() }).strict(),
  /** At least `minCount` matching events (since the step `afterStep`, when given). */
  z.object({ event: EventMatch.extend({ minCount: z.number().int().min(1).default(1), afterStep: z.number().int().min(0).optional() }).strict() }).strict(),
  /** `node` sees every one of `peers`: they are in its Kademlia routing table. */
  z.object({ sees: z.object({ node: Name, peers: Refs }).strict() }).strict(),
  z.object({ connected: z.object({ node: Name, peers: Refs }).strict() }).strict(),
  /** A fresh dial from `node` to each of `peers` succeeds now (the network path works). */
  z.object({ reachable: z.object({ node: Name, peers: Refs }).strict() }).strict(),
  /** A fresh dial from `node` to each of `peers` fails now (e.g. across a partition). */
  z.object({ unreachable: z.object({ node: Name, peers: Refs }).strict() }).strict()
])
export type Condition = z.infer<typeof ConditionSchema>

export const CheckSchema = z.union([
  /** An event happened (after step `afterStep`, within `withinMs` of that step's start). */
  z.object({
    event: EventMatch.extend({
      afterStep: z.number().int().min(0).optional(),
      withinMs: PlanMs.optional(),
      /** Real ms added to `withinMs` (not scaled): timer and scheduling jitter on a loaded machine. */
      toleranceMs: RealMs.default(0),
      minCount: z.number().int().min(1).default(1)
    }).strict()
  }).strict(),
  /** No such event happened (after step `afterStep`). */
  z.object({ noEvent: EventMatch.extend({ afterStep: z.number().int().min(0).optional() }).strict() }).strict(),
  /** Not a check: whether nodes are connected is a condition that takes time, so it belongs in a `wait`. */
  z.object({ connected: z.never({ error: 'a "connected" check needs time to hold: use { action: wait, until: { connected: { node, peers } }, timeoutMs }' }) }).strict()
])
export type Check = z.infer<typeof CheckSchema>

const ConnectExpect = z.object({
  success: z.boolean().optional(),
  category: ErrorCategorySchema.optional(),
  /** The bootstrap (node name) the peer ends on. */
  bootstrap: Name.optional(),
  durationMs: DurationExpect.optional(),
  attempts: z.number().int().min(1).optional(),
  /** The timeouts used by each attempt, in plan ms, e.g. [10000, 15000] for a busy retry. */
  attemptTimeoutsMs: z.array(PlanMs).optional(),
  message: Text(TEXT_LIMITS.message).optional(),
  suggestedAction: Text(TEXT_LIMITS.message).optional()
}).strict()

const VerifyExpect = z.object({
  overall: DiscoveryOverallSchema.optional(),
  firstPeer: z.boolean().optional(),
  routingTablePeers: z.number().int().min(0).optional(),
  checks: z.object({
    bootstrapConnected: z.boolean(), routingTablePopulated: z.boolean(), eventsWorking: z.boolean(),
    dhtReadWrite: z.boolean(), peerDialing: z.boolean(), fileDiscovery: z.boolean()
  }).partial().strict().optional(),
  message: Text(TEXT_LIMITS.message).optional()
}).strict()

const FileSpec = z.object({
  name: z.string().min(1),
  /** Deterministic content of this size from the scenario seed, or literal text. */
  sizeBytes: z.number().int().min(1).max(16 * 1024 * 1024).optional(),
  text: z.string().optional()
}).strict().refine(f => (f.sizeBytes == null) !== (f.text == null), { message: 'give exactly one of "sizeBytes" or "text"' })

/**
 * Which directed links a fault hits. Links run between chiral-sim nodes ("A->boot" is A dialling boot). `to` and
 * `from` select every link into or out of the named nodes (both: the links from one set to the other);
 * `between` selects both directions between two groups (a partition); `links` names them one by one.
 */
export const LinkTargetSchema = z.object({
  /** Every link into and out of these nodes: "the bootstrap is down / slow" (a one-way cut leaves the other way). */
  around: Refs.optional(),
  from: Refs.optional(),
  to: Refs.optional(),
  between: z.tuple([Refs, Refs]).optional(),
  links: z.array(z.string().regex(/^[A-Za-z0-9_.-]+->[A-Za-z0-9_.-]+$/, 'a link is written "from->to", e.g. "A->boot"')).min(1).optional()
}).strict().refine(t => t.around != null || t.from != null || t.to != null || t.between != null || t.links != null, { message: 'name the links: give "around", "to", "from", "between" or "links"' })
export type LinkTarget = z.infer<typeof LinkTargetSchema>

const FaultStep = z.object({
  action: z.literal('fault'),
  target: LinkTargetSchema,
  /** A Toxiproxy toxic (every kind Toxiproxy has), e.g. { type: latency, latency: 300, jitter: 50, stream: downstream }. */
  toxic: ToxicSpec.optional(),
  /** The links are down: their proxies are disabled (new dials refused, open connections dropped). */
  down: z.literal(true).optional(),
  /** Removed automatically after this long (plan ms, scaled); otherwise until a `heal` step. */
  durationMs: PlanMs.optional(),
  /** A name for `heal`. */
  as: Name.optional(),
  ...Common
}).strict().refine(f => (f.toxic == null) !== (f.down == null), { message: 'give exactly one of "toxic" or "down: true"' })

const HealStep = z.object({
  action: z.literal('heal'),
  /** Fault names (`as`) to remove; default: every active fault. */
  faults: z.array(Name).optional(),
  ...Common
}).strict()

const ExpectedAsymmetry = z.object({ sees: Name, unseen: Name, cause: AsymmetryCauseSchema }).strict()
/** Two peers, joined through the same bootstrap, of which neither sees the other, and why (in either order). */
const ExpectedBlindPair = z.object({ peers: z.tuple([Name, Name]), cause: AsymmetryCauseSchema }).strict()

const BaseSteps = [
  z.object({ action: z.literal('start'), nodes: Refs, ...Common }).strict(),
  z.object({ action: z.literal('stop'), nodes: Refs, ...Common }).strict(),
  /** An abrupt end: SIGKILL in process/docker modes, an immediate stop in process. */
  z.object({ action: z.literal('kill'), nodes: Refs, ...Common }).strict(),
  z.object({ action: z.literal('restart'), nodes: Refs, ...Common }).strict(),
  z.object({
    action: z.literal('connect'), nodes: Refs, ...Common,
    /** Overrides the node's connectionTimeoutMs (plan ms, 5000–30000). */
    timeoutMs: connectionTimeoutMs('timeoutMs').optional(),
    /** Bootstrap node names to try instead of the node's own list. */
    bootstraps: z.array(Name).optional(),
    expect: ConnectExpect.optional()
  }).strict(),
  z.object({ action: z.literal('monitor'), nodes: Refs, enabled: z.boolean().default(true), ...Common }).strict(),
  z.object({ action: z.literal('health'), nodes: Refs, ...Common, expect: z.object({ status: HealthStatusSchema.optional(), isReachable: z.boolean().optional() }).strict().optional() }).strict(),
  z.object({ action: z.literal('verify'), nodes: Refs, ...Common, expect: VerifyExpect.optional() }).strict(),
  /**
   * Every listed node must discover and dial every other listed node within `withinMs` (Test 3: 15 s), in real ms at
   * every timeScale: discovery is libp2p's own network work, which time compression does not make faster.
   */
  z.object({ action: z.literal('waitBidirectional'), nodes: z.array(Name).min(2), withinMs: RealMs.describe('real milliseconds, never scaled').default(15_000), ...Common }).strict(),
  z.object({ action: z.literal('share'), node: Name, file: FileSpec, as: Name, ...Common }).strict(),
  z.object({ action: z.literal('search'), node: Name, file: Name, ...Common, expect: z.object({ providers: z.array(Name) }).strict().optional() }).strict(),
  z.object({ action: z.literal('download'), node: Name, file: Name, from: Name.optional(), ...Common, expect: z.object({ success: z.boolean() }).strict().optional() }).strict(),
  /** Waits until the condition holds; not holding by the deadline fails the scenario (unless `expect: false`). */
  z.object({
    action: z.literal('wait'), until: ConditionSchema, timeoutMs: PlanMs, expect: z.boolean().default(true),
    /**
     * Real ms (not scaled) added to the scaled timeout, never past `timeoutMs` itself: work inside the wait that
     * compression does not shorten (a supervised restart, a container's start). At timeScale 1 it changes nothing.
     */
    toleranceMs: RealMs.default(0),
    ...Common
  }).strict(),
  /** Lets plan time pass (scaled), e.g. to observe that nothing goes wrong; prefer `wait` for conditions. */
  z.object({ action: z.literal('pause'), ms: PlanMs, ...Common }).strict(),
  z.object({ action: z.literal('refresh'), nodes: Refs, ...Common }).strict(),
  z.object({ action: z.literal('assert'), check: CheckSchema, ...Common }).strict(),
  /** Computes the who-sees-whom matrix and diagnoses every asymmetric pair. */
  z.object({
    action: z.literal('matrix'), ...Common,
    /** Also run DHT lookups between every pair (slower; lookups may heal an asymmetry, so they run last). */
    lookups: z.boolean().default(false),
    /**
     * Also dial every pair on a fresh connection (after the routing tables are read): a pair only "sees" each
     * other when the path works now, which is what reveals a one-way network fault.
     */
    probe: z.boolean().default(false),
    /**
     * The asymmetric pairs, and the pairs blind both ways, the matrix must find: exactly these, each with its cause.
     * `blind` left out means none: two peers that share a bootstrap and see nothing fail `asymmetries: []`.
     */
    expect: z.object({ asymmetries: z.array(ExpectedAsymmetry), blind: z.array(ExpectedBlindPair).default([]) }).strict().optional()
  }).strict(),
  FaultStep,
  HealStep,
  /**
   * A seeded population schedule: each round some offline peers of the group join (start and connect), some online
   * ones leave (stop, or kill), then a sample of the online ones verifies discovery. The release profile is built
   * from it; its connects and verifications are what the KPIs count.
   */
  z.object({
    action: z.literal('churn'),
    nodes: Refs,
    rounds: z.number().int().min(1).max(100),
    /** Share of the offline peers that join each round (at least one while any is offline). */
    joinFraction: z.number().min(0).max(1).default(0.5),
    /** Share of the online peers that leave each round. */
    leaveFraction: z.number().min(0).max(1).default(0.2),
    /** Share of the leavers that are killed rather than stopped gracefully. */
    killFraction: z.number().min(0).max(1).default(0.5),
    /** Plan time between rounds (scaled). */
    intervalMs: PlanMs.default(10_000),
    /** Online peers whose discovery is verified each round. */
    verifySample: z.number().int().min(0).default(3),
    expect: z.object({
      /** Minimum share (percent) of peers whose connect succeeded, failover included. */
      connectSuccessPercent: z.number().min(0).max(100).optional(),
      /** Minimum share (percent) of sampled verifications that were "verified". */
      verifiedPercent: z.number().min(0).max(100).optional()
    }).strict().optional(),
    ...Common
  }).strict()
] as const

const BaseStepSchema = z.discriminatedUnion('action', [...BaseSteps])

/**
 * Where does it break? Applies `toxic` to the target links with `parameter` set to each of `values` in turn, runs
 * `steps` at each value, and records connection and discovery success per value. The report plots them and names
 * the knee: the first value at which a KPI falls below its target.
 */
const SweepStep = z.object({
  action: z.literal('sweep'),
  target: LinkTargetSchema,
  toxic: ToxicSpec,
  /** The toxic attribute to vary, e.g. "latency", "jitter", "rate", "toxicity". */
  parameter: z.string().min(1),
  /** Ascending; the last (harshest) value stays applied until the end of the scenario. */
  values: z.array(z.number().min(0)).min(2).refine(v => v.every((x, i) => i === 0 || x > v[i - 1]!), { message: 'sweep values must ascend (the harshest last)' }),
  steps: z.array(BaseStepSchema).min(1),
  expect: z.object({
    /** The knee must come after this value (or not at all): the margin the release needs. */
    kneeAbove: z.number().optional()
  }).strict().optional(),
  ...Common
}).strict()

export const StepSchema = z.discriminatedUnion('action', [...BaseSteps, SweepStep])
export type Step = z.infer<typeof StepSchema>
export type StepAction = Step['action']

const ScenarioObject = z.object({
  /** JSON Schema reference for editors; ignored by the runner. */
  $schema: z.string().optional(),
  name: Name,
  title: Text(TEXT_LIMITS.title).min(1),
  description: Text(TEXT_LIMITS.description).default(''),
  planTest: z.number().int().min(1).max(6).optional(),
  tags: z.array(Text(TEXT_LIMITS.tag).min(1)).max(TEXT_LIMITS.tags, `at most ${TEXT_LIMITS.tags} tags`).default([]),
  /** Modes the scenario can run in; in others it is reported as skipped with the reason, never as passed. */
  modes: z.array(ModeSchema).optional(),
  /** Why it cannot run in the excluded modes (shown in the report). */
  modesReason: Text(TEXT_LIMITS.message).optional(),
  /** Default scale for this scenario; the CLI's --time-scale overrides it. */
  timeScale: TimeScaleSchema.default(0.1),
  /** Plan timing overrides for every node of the scenario. */
  timing: TimingOverrides.optional(),
  /**
   * Real-ms allowance for what time compression does not shorten (starting nodes, libp2p's admission, unscaled
   * deadlines). The scenario's deadline is this plus the plan time its steps may wait × timeScale
   * (sim/runner/deadline.ts), so the same file fits at timeScale 0.1 and 1.
   */
  timeoutMs: z.number().int().min(1_000).max(3_600_000).default(120_000),
  nodes: z.array(NodeSpecSchema).min(1),
  steps: z.array(StepSchema).min(1)
}).strict()

type ScenarioData = z.output<typeof ScenarioObject>
type AnyStep = ScenarioData['steps'][number] | z.output<typeof BaseStepSchema>
type Role = NodeSpec['role']
type Path = Array<string | number>

const ANY: readonly Role[] = ['bootstrap', 'peer', 'blackhole', 'external']
const CHIRAL: readonly Role[] = ['bootstrap', 'peer']
const PEERS: readonly Role[] = ['peer']
const BOOTSTRAPS: readonly Role[] = ['bootstrap', 'blackhole', 'external']
/** Nodes with a peer ID: a blackhole only accepts sockets, nobody can see, dial or be seen by it. */
const WITH_PEER_ID: readonly Role[] = ['bootstrap', 'peer', 'external']
/** Steps whose node commands only peers serve (nodes/commands.ts `roles`). */
const PEER_STEPS: ReadonlySet<string> = new Set(['connect', 'monitor', 'health', 'verify', 'waitBidirectional', 'share', 'search', 'download', 'churn'])
const CONDITION_ROLES: Readonly<Record<string, readonly Role[]>> = {
  routingTable: CHIRAL, health: PEERS, event: ANY, sees: CHIRAL, connected: CHIRAL, reachable: PEERS, unreachable: PEERS
}

const roleList = (roles: readonly Role[]): string => roles.join(' or ')

/** Does the step check something, i.e. add an assertion to the record? */
function asserts (step: AnyStep): boolean {
  switch (step.action) {
    case 'wait': case 'assert': case 'waitBidirectional': case 'sweep': return true
    case 'connect': case 'health': case 'verify': case 'search': case 'download': case 'matrix': case 'churn':
      return step.expect != null && checksSomething(step.expect)
    default: return false
  }
}

function checksSomething (value: object): boolean {
  return Object.entries(value).some(([key, v]) => key !== 'toleranceMs' && v !== undefined &&
    (typeof v !== 'object' || v === null || Array.isArray(v) || checksSomething(v as object)))
}

/**
 * What the runner would otherwise find out mid-run: references, roles, step order, link names, per-node timing and
 * whether the scenario checks anything. Group members ("p-3") are resolved arithmetically, never by expanding the
 * group: a `count` beyond its bound must not allocate (zod runs refinements after a failed bound).
 */
function crossCheck (s: ScenarioData, ctx: z.RefinementCtx): void {
  const reported = new Set<string>()
  const issue = (path: Path, message: string): void => {
    // Several nodes can trip over the same scenario-level field: say it once.
    const key = `${path.join('.')}\n${message}`
    if (!reported.has(key)) ctx.addIssue({ code: 'custom', path, message })
    reported.add(key)
  }
  const declared = new Map<string, NodeSpec>()
  for (const [i, n] of s.nodes.entries()) {
    if (declared.has(n.name)) issue(['nodes', i, 'name'], `duplicate node name "${n.name}"`)
    else declared.set(n.name, n)
  }
  const groups = new Map(s.nodes.filter(n => n.role === 'peer' && n.count != null).map(n => [n.name, n as Extract<NodeSpec, { role: 'peer' }>]))
  /** The group whose member `ref` is ("p-3" of a group "p" with count ≥ 3). */
  const groupOf = (ref: string): Extract<NodeSpec, { role: 'peer' }> | undefined => {
    const m = /^(.+)-([1-9][0-9]{0,8})$/.exec(ref)
    const group = m == null ? undefined : groups.get(m[1]!)
    return group != null && Number(m![2]) <= group.count! ? group : undefined
  }
  for (const [i, n] of s.nodes.entries()) {
    const group = groupOf(n.name)
    if (group != null) issue(['nodes', i, 'name'], `"${n.name}" is also a member of the group "${group.name}" (count ${group.count}): rename the node or the group`)
  }
  const names = [...declared.keys()]
  const listed = names.length > 20 ? `${names.slice(0, 20).join(', ')}, …` : names.join(', ')

  interface Want { roles?: readonly Role[], why?: string, concrete?: boolean }
  /** Checks one node reference; returns the node it names, if valid. */
  const check = (ref: string, path: Path, want: Want = {}): NodeSpec | undefined => {
    const own = declared.get(ref)
    const spec = own ?? groupOf(ref)
    if (spec == null) {
      issue(path, `unknown node "${ref}"; declared nodes: ${listed}`)
      return undefined
    }
    if (want.concrete === true && own != null && groups.has(ref)) {
      issue(path, `"${ref}" is a group of ${own.role === 'peer' ? own.count : ''} peers; name one of them (${ref}-1 … ${ref}-${own.role === 'peer' ? own.count : ''})`)
      return undefined
    }
    if (want.roles != null && !want.roles.includes(spec.role)) {
      issue(path, `"${ref}" is ${spec.role === 'external' ? 'an' : 'a'} ${spec.role} node; ${want.why ?? `expected a ${roleList(want.roles)} node`}`)
      return undefined
    }
    return spec
  }
  const bootstrapRef: Want = { roles: BOOTSTRAPS, concrete: true, why: 'a peer bootstraps from bootstrap, blackhole or external nodes' }
  const linkEnd: Want = { roles: CHIRAL, why: 'fault links run between bootstraps and peers (blackholes and external nodes have none)' }

  for (const [i, n] of s.nodes.entries()) {
    if (n.role === 'peer') n.bootstraps?.forEach((b, j) => { check(b, ['nodes', i, 'bootstraps', j], bootstrapRef) })
    if (n.role === 'bootstrap' || n.role === 'peer') nodeConfigIssues(s, n, i, issue)
  }

  /** Do two node lists share a node (directly or through a group)? */
  const overlap = (a: string[], b: string[]): string | undefined => {
    for (const x of a) {
      for (const y of b) {
        if (x === y || groupOf(y)?.name === x) return y
        if (groupOf(x)?.name === y) return x
      }
    }
    return undefined
  }

  const shared = new Set<string>()
  const faults = new Set<string>()
  /** Nodes and groups some earlier step started (start, restart, churn): a command to any other has no node to go to. */
  const started = new Set<string>()
  const everStarted = (ref: string): boolean => {
    if (started.has(ref)) return true
    const group = groupOf(ref)
    if (group != null) return started.has(group.name)
    // A whole group: started as a group, or member by member.
    return groups.has(ref) && [...started].some(r => groupOf(r)?.name === ref)
  }
  const checkSteps = (steps: readonly AnyStep[], prefix: Path, outer: number | undefined): void => {
    for (const [i, step] of steps.entries()) {
      const base: Path = [...prefix, i]
      // afterStep counts top-level steps; inside a sweep, those before the sweep.
      const earlier = outer ?? i
      const afterStep = (value: number | undefined, path: Path): void => {
        if (value != null && value >= earlier) {
          issue(path, earlier === 0 ? 'afterStep must name an earlier step, and this is the first step' : `afterStep must name an earlier step (0–${earlier - 1})`)
        }
      }
      const roles: Want = PEER_STEPS.has(step.action) ? { roles: PEERS, why: `"${step.action}" runs on peers` } : step.action === 'refresh' ? { roles: CHIRAL } : {}
      const commands = (PEER_STEPS.has(step.action) && step.action !== 'churn') || step.action === 'refresh'
      const refs: Array<[string, Path]> = 'nodes' in step ? step.nodes.map((n, j) => [n, [...base, 'nodes', j]]) : 'node' in step ? [[step.node, [...base, 'node']]] : []
      for (const [n, at] of refs) {
        if (commands && (declared.has(n) || groupOf(n) != null) && !everStarted(n)) issue(at, `"${n}" is not started by an earlier step; add it to a "start" step before "${step.action}"`)
      }
      if (step.action === 'start' || step.action === 'restart' || step.action === 'churn') for (const n of step.nodes) started.add(n)
      if ('nodes' in step) {
        step.nodes.forEach((n, j) => {
          const spec = check(n, [...base, 'nodes', j], roles)
          if ((step.action === 'stop' || step.action === 'kill' || step.action === 'restart') && spec?.role === 'external' && spec.command == null && spec.image == null && spec.reference == null) {
            issue([...base, 'nodes', j], `external node "${n}" is not started by chiral-sim (it has no command, image or reference), so a scenario cannot ${step.action} it; give it one of them, or fault its links instead`)
          }
        })
      }
      if ('node' in step) check(step.node, [...base, 'node'], { ...roles, concrete: true })
      if ('target' in step) {
        const t = step.target
        t.around?.forEach((n, j) => { check(n, [...base, 'target', 'around', j], linkEnd) })
        t.from?.forEach((n, j) => { check(n, [...base, 'target', 'from', j], linkEnd) })
        t.to?.forEach((n, j) => { check(n, [...base, 'target', 'to', j], linkEnd) })
        t.between?.forEach((group, g) => { group.forEach((n, j) => { check(n, [...base, 'target', 'between', g, j], linkEnd) }) })
        if (t.between != null) {
          const both = overlap(t.between[0], t.between[1])
          if (both != null) issue([...base, 'target', 'between'], `"${both}" is on both sides: a partition's two groups must not share a node`)
        }
        t.links?.forEach((l, j) => {
          const [from, to] = l.split('->') as [string, string]
          if (from === to) {
            issue([...base, 'target', 'links', j], `"${l}" links a node to itself; a link runs from one node to another, e.g. "${from}->other"`)
            return
          }
          for (const n of [from, to]) check(n, [...base, 'target', 'links', j], { ...linkEnd, concrete: true })
        })
      }
      switch (step.action) {
        case 'connect':
          step.bootstraps?.forEach((b, j) => { check(b, [...base, 'bootstraps', j], bootstrapRef) })
          if (step.expect?.bootstrap != null) check(step.expect.bootstrap, [...base, 'expect', 'bootstrap'], bootstrapRef)
          // A blackhole has an address only once started: the peer could not be told where it is.
          step.nodes.forEach((n, j) => {
            const spec = declared.get(n) ?? groupOf(n)
            const list = step.bootstraps ?? (spec?.role === 'peer' ? spec.bootstraps : undefined) ?? s.nodes.filter(x => x.role !== 'peer').map(x => x.name)
            const idle = list.filter(b => declared.get(b)?.role === 'blackhole' && !everStarted(b))
            if (idle.length > 0) issue([...base, 'nodes', j], `"${n}" bootstraps from the blackhole ${idle.map(b => `"${b}"`).join(', ')}, which no earlier step started; start it before "connect"`)
          })
          break
        case 'share': shared.add(step.as); break
        case 'search': case 'download':
          if (!shared.has(step.file)) issue([...base, 'file'], `file "${step.file}" is not shared by an earlier "share" step (as: ${step.file})`)
          if (step.action === 'download' && step.from != null) check(step.from, [...base, 'from'], { roles: WITH_PEER_ID, concrete: true })
          if (step.action === 'search') step.expect?.providers.forEach((p, j) => { check(p, [...base, 'expect', 'providers', j], { roles: WITH_PEER_ID, concrete: true }) })
          break
        case 'wait': case 'assert': {
          const [kind, inner] = Object.entries(step.action === 'wait' ? step.until : step.check)[0] as [string, { node: string, peers?: string[], afterStep?: number }]
          const at: Path = [...base, step.action === 'wait' ? 'until' : 'check', kind]
          check(inner.node, [...at, 'node'], { roles: CONDITION_ROLES[kind] ?? ANY, concrete: true, why: `a "${kind}" condition asks a ${roleList(CONDITION_ROLES[kind] ?? ANY)} node` })
          // A fresh dial needs the peer's ID, which a blackhole does not have; a blackhole is never seen nor connected.
          const dials = kind === 'reachable' || kind === 'unreachable'
          inner.peers?.forEach((p, j) => { check(p, [...at, 'peers', j], dials ? { roles: WITH_PEER_ID, concrete: true, why: 'a blackhole has no peer ID to dial' } : { concrete: true }) })
          afterStep(inner.afterStep, [...at, 'afterStep'])
          break
        }
        case 'matrix':
          step.expect?.asymmetries.forEach((a, j) => {
            check(a.sees, [...base, 'expect', 'asymmetries', j, 'sees'], { roles: WITH_PEER_ID, concrete: true })
            check(a.unseen, [...base, 'expect', 'asymmetries', j, 'unseen'], { roles: WITH_PEER_ID, concrete: true })
          })
          break
        case 'fault': if (step.as != null) faults.add(step.as); break
        case 'heal':
          step.faults?.forEach((f, j) => {
            if (!faults.has(f)) issue([...base, 'faults', j], `no earlier fault step is named "${f}" (as: ${f}); named faults: ${[...faults].join(', ') || 'none'}`)
          })
          break
        case 'sweep':
          if (!(step.parameter in step.toxic)) {
            issue([...base, 'parameter'], `"${step.parameter}" is not an attribute of a ${step.toxic.type} toxic; use one of ${Object.keys(step.toxic).filter(k => k !== 'type').join(', ')}`)
          }
          checkSteps(step.steps, [...base, 'steps'], i)
          break
      }
    }
  }
  checkSteps(s.steps, ['steps'], undefined)
  if (!s.steps.some(asserts)) {
    issue(['steps'], 'the scenario asserts nothing, so it could never fail: add an "expect" to a step, or a wait, assert, waitBidirectional or sweep step')
  }
}

/**
 * The node config the runner will build for this spec (nodes/config.ts), checked now: per-node timing layered over
 * the scenario's (e.g. healthyLatencyMs must stay below degradedLatencyMs), DHT options, and the longest member
 * name of a group. Reported at the field the scenario wrote.
 */
function nodeConfigIssues (s: ScenarioData, n: Extract<NodeSpec, { role: 'bootstrap' | 'peer' }>, i: number, issue: (path: Path, message: string) => void): void {
  const name = n.role === 'peer' && n.count != null ? `${n.name}-${n.count}` : n.name
  const result = NodeConfigSchema.safeParse({
    name, role: n.role, identitySeed: 'validate', timing: { ...s.timing, ...n.timing, timeScale: s.timeScale },
    ...(n.dht != null ? { dht: n.dht } : {})
  })
  if (result.success) {
    if (n.role === 'peer' && n.implementation != null && n.implementation !== 'js') {
      for (const u of referencePeerUnsupported(n.implementation, { ...result.data, autoVerify: n.autoVerify ?? false })) {
        issue(['nodes', i, ...u.field.split('.')], `${n.implementation} peer "${n.name}": ${u.message}`)
      }
      if (usesFaultLinks(s)) issue(['nodes', i, 'implementation'], `${n.implementation} peer "${n.name}": this scenario injects faults through proxies, and a ${n.implementation} peer cannot be wired through them; use js peers in fault scenarios`)
    }
    return
  }
  for (const e of result.error.issues) {
    const [head, field, ...rest] = e.path
    if (head === 'timing' && typeof field === 'string') {
      // A node with its own timing block made the layered timing invalid; otherwise the scenario's timing did.
      const own = n.timing != null && Object.keys(n.timing).length > 0
      issue(own ? ['nodes', i, 'timing', field, ...rest as Path] : ['timing', field, ...rest as Path], e.message)
    } else if (head === 'dht') {
      issue(['nodes', i, ...e.path as Path], e.message)
    } else if (head === 'name') {
      issue(['nodes', i, n.role === 'peer' && n.count != null ? 'count' : 'name'], `the node name "${name}" is invalid: ${e.message}`)
    } else {
      issue(['nodes', i], `${e.path.join('.')}: ${e.message}`)
    }
  }
}

/** Fault steps wire every node through Toxiproxy (sim/runner/link-wiring.ts usesFaults, the same rule). */
const usesFaultLinks = (s: ScenarioData): boolean => s.steps.some(x => x.action === 'fault' || x.action === 'sweep')

export const ScenarioSchema = ScenarioObject.superRefine(crossCheck)

export type Scenario = z.output<typeof ScenarioSchema>
export type ScenarioInput = z.input<typeof ScenarioSchema>

/** Node names after expanding `count` groups (peer "p" with count 3 → p-1, p-2, p-3). */
export function expandNames (nodes: ReadonlyArray<NodeSpec>): string[] {
  return nodes.flatMap(n => n.role === 'peer' && n.count != null
    ? Array.from({ length: n.count }, (_, i) => `${n.name}-${i + 1}`)
    : [n.name])
}

/** Resolves node references (names or group names) to concrete node names, in order, without duplicates. */
export function resolveRefs (nodes: ReadonlyArray<NodeSpec>, refs: ReadonlyArray<string>): string[] {
  const out: string[] = []
  for (const ref of refs) {
    const group = nodes.find(n => n.name === ref)
    const names = group?.role === 'peer' && group.count != null ? expandNames([group]) : [ref]
    for (const n of names) if (!out.includes(n)) out.push(n)
  }
  return out
}
