import { z } from 'zod'
import { DhtOptionsSchema, PlanTimingOverridesSchema } from '../nodes/config.ts'
import { DiscoveryOverallSchema, ErrorCategorySchema, HealthStatusSchema } from '../nodes/schemas.ts'
import { NodeEventBodySchema } from '../nodes/events.ts'
import { AsymmetryCauseSchema, ModeSchema } from '../sim/record.ts'
import { ToxicSpec } from '../sim/faults/toxic-spec.ts'

/**
 * A scenario is data: one zod schema validates YAML, JSON and TypeScript scenarios alike, and the JSON Schema that
 * editors use is generated from it. Durations are the plan's real milliseconds; the runner multiplies them by the
 * scenario's timeScale. Tolerances are real milliseconds and are never scaled (they absorb machine jitter).
 */
const Name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'use letters, digits, "_", "." or "-" (at most 64)')
const PlanMs = z.number().int().min(0).describe('plan milliseconds, scaled by timeScale at run time')
const Refs = z.array(Name).min(1, 'name at least one node')
const TimingOverrides = PlanTimingOverridesSchema
const eventTypes = NodeEventBodySchema.options.map(o => o.shape.type.value) as [string, ...string[]]
const EventType = z.enum(eventTypes as [string, ...string[]])

const Common = {
  /** Shown in the timeline and reports instead of the generated summary. */
  label: z.string().optional(),
  /** The plan passage this step checks, e.g. "Test 2 / Expected Results". */
  planRef: z.string().optional()
}

const DurationExpect = z.object({
  min: PlanMs.optional(),
  max: PlanMs.optional(),
  /** Expected duration (plan ms, scaled); with `toleranceMs` (real ms, unscaled). */
  approx: PlanMs.optional(),
  toleranceMs: z.number().int().min(0).default(500)
}).strict()

const BootstrapNode = z.object({
  role: z.literal('bootstrap'),
  name: Name,
  maxPeers: z.number().int().min(1).optional(),
  /**
   * Run the plan's auto-recovery supervisor (Solution #4) on this bootstrap: process alive, port listening, DHT
   * answering a ping within 5 s, restarts with the 3-in-10-minutes rule. Needs process or docker mode.
   */
  supervise: z.boolean().optional(),
  dht: DhtOptionsSchema.partial().optional(),
  timing: TimingOverrides.optional()
}).strict()

const PeerNode = z.object({
  role: z.literal('peer'),
  name: Name,
  /** Expands to `<name>-1` … `<name>-N`: a population of identical peers. */
  count: z.number().int().min(1).max(2_000).optional(),
  /** Bootstrap node names in failover order; default: every bootstrap of the scenario in declaration order. */
  bootstraps: z.array(Name).optional(),
  dht: DhtOptionsSchema.partial().optional(),
  timing: TimingOverrides.optional(),
  autoMonitor: z.boolean().optional(),
  autoVerify: z.boolean().optional()
}).strict()

/** A listener that accepts connections and never answers: the plan's hung or unroutable bootstrap (Test 2). */
const BlackholeNode = z.object({ role: z.literal('blackhole'), name: Name }).strict()

/**
 * A bootstrap chiral-sim did not build (a rust-libp2p or go-libp2p binary, or any libp2p node), treated as a black
 * box reached only through libp2p: ping, identify, DHT queries and what the peers see. Started from `command` on
 * this machine (tcp, process and docker modes), from `image` as a container of the run (docker mode), or already
 * running at `multiaddr`.
 */
const ExternalNode = z.object({
  role: z.literal('external'),
  name: Name,
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
  const started = n.command != null || n.image != null
  if (!started && n.multiaddr.includes('{port}')) ctx.addIssue({ code: 'custom', path: ['multiaddr'], message: '{port} needs a command or an image to give the port to; give the running node\'s real port' })
  if (!started && n.multiaddr.includes('{host}')) ctx.addIssue({ code: 'custom', path: ['multiaddr'], message: '{host} needs a command or an image to give the address to; give the running node\'s real address' })
  if (!started && n.readyLine != null) ctx.addIssue({ code: 'custom', path: ['readyLine'], message: 'readyLine needs a command or an image whose output it is; remove it or add one' })
})

export const NodeSpecSchema = z.discriminatedUnion('role', [BootstrapNode, PeerNode, BlackholeNode, ExternalNode])
export type NodeSpec = z.infer<typeof NodeSpecSchema>

const Primitive = z.union([z.string(), z.number(), z.boolean(), z.null()])
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
      toleranceMs: z.number().int().min(0).default(0),
      minCount: z.number().int().min(1).default(1)
    }).strict()
  }).strict(),
  /** No such event happened (after step `afterStep`). */
  z.object({ noEvent: EventMatch.extend({ afterStep: z.number().int().min(0).optional() }).strict() }).strict(),
  z.object({ connected: z.object({ node: Name, peers: Refs }).strict() }).strict()
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
  message: z.string().optional(),
  suggestedAction: z.string().optional()
}).strict()

const VerifyExpect = z.object({
  overall: DiscoveryOverallSchema.optional(),
  firstPeer: z.boolean().optional(),
  routingTablePeers: z.number().int().min(0).optional(),
  checks: z.object({
    bootstrapConnected: z.boolean(), routingTablePopulated: z.boolean(), eventsWorking: z.boolean(),
    dhtReadWrite: z.boolean(), peerDialing: z.boolean(), fileDiscovery: z.boolean()
  }).partial().strict().optional(),
  message: z.string().optional()
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

const BaseSteps = [
  z.object({ action: z.literal('start'), nodes: Refs, ...Common }).strict(),
  z.object({ action: z.literal('stop'), nodes: Refs, ...Common }).strict(),
  /** An abrupt end: SIGKILL in process/docker modes, an immediate stop in process. */
  z.object({ action: z.literal('kill'), nodes: Refs, ...Common }).strict(),
  z.object({ action: z.literal('restart'), nodes: Refs, ...Common }).strict(),
  z.object({
    action: z.literal('connect'), nodes: Refs, ...Common,
    /** Overrides the node's connectionTimeoutMs (plan ms, 5000–30000). */
    timeoutMs: z.number().int().min(5_000).max(30_000).optional(),
    /** Bootstrap node names to try instead of the node's own list. */
    bootstraps: z.array(Name).optional(),
    expect: ConnectExpect.optional()
  }).strict(),
  z.object({ action: z.literal('monitor'), nodes: Refs, enabled: z.boolean().default(true), ...Common }).strict(),
  z.object({ action: z.literal('health'), nodes: Refs, ...Common, expect: z.object({ status: HealthStatusSchema.optional(), isReachable: z.boolean().optional() }).strict().optional() }).strict(),
  z.object({ action: z.literal('verify'), nodes: Refs, ...Common, expect: VerifyExpect.optional() }).strict(),
  /** Every listed node must discover and dial every other listed node within `withinMs` (Test 3: 15 s). */
  z.object({ action: z.literal('waitBidirectional'), nodes: z.array(Name).min(2), withinMs: PlanMs.default(15_000), ...Common }).strict(),
  z.object({ action: z.literal('share'), node: Name, file: FileSpec, as: Name, ...Common }).strict(),
  z.object({ action: z.literal('search'), node: Name, file: Name, ...Common, expect: z.object({ providers: z.array(Name) }).strict().optional() }).strict(),
  z.object({ action: z.literal('download'), node: Name, file: Name, from: Name.optional(), ...Common, expect: z.object({ success: z.boolean() }).strict().optional() }).strict(),
  /** Waits until the condition holds; not holding by the deadline fails the scenario (unless `expect: false`). */
  z.object({ action: z.literal('wait'), until: ConditionSchema, timeoutMs: PlanMs, expect: z.boolean().default(true), ...Common }).strict(),
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
    expect: z.object({ asymmetries: z.array(ExpectedAsymmetry) }).strict().optional()
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

export const ScenarioSchema = z.object({
  /** JSON Schema reference for editors; ignored by the runner. */
  $schema: z.string().optional(),
  name: Name,
  title: z.string().min(1),
  description: z.string().default(''),
  planTest: z.number().int().min(1).max(6).optional(),
  tags: z.array(z.string()).default([]),
  /** Modes the scenario can run in; in others it is reported as skipped with the reason, never as passed. */
  modes: z.array(ModeSchema).optional(),
  /** Why it cannot run in the excluded modes (shown in the report). */
  modesReason: z.string().optional(),
  /** Default scale for this scenario; the CLI's --time-scale overrides it. */
  timeScale: z.number().positive().max(1).default(0.1),
  /** Plan timing overrides for every node of the scenario. */
  timing: TimingOverrides.optional(),
  /** Deadline for the whole scenario, in real milliseconds. */
  timeoutMs: z.number().int().min(1_000).max(3_600_000).default(120_000),
  nodes: z.array(NodeSpecSchema).min(1),
  steps: z.array(StepSchema).min(1)
}).strict().superRefine((s, ctx) => {
  const names = new Set<string>()
  for (const [i, n] of s.nodes.entries()) {
    if (names.has(n.name)) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'name'], message: `duplicate node name "${n.name}"` })
    names.add(n.name)
  }
  const expanded = new Set(expandNames(s.nodes))
  const known = (ref: string): boolean => expanded.has(ref) || names.has(ref)
  const check = (ref: unknown, path: Array<string | number>): void => {
    if (typeof ref === 'string' && !known(ref)) {
      ctx.addIssue({ code: 'custom', path, message: `unknown node "${ref}"; declared nodes: ${[...names].join(', ')}` })
    }
  }
  for (const [i, n] of s.nodes.entries()) {
    if (n.role === 'peer') n.bootstraps?.forEach((b, j) => { check(b, ['nodes', i, 'bootstraps', j]) })
  }
  const shared = new Set<string>()
  const checkSteps = (steps: ReadonlyArray<z.infer<typeof BaseStepSchema> | z.infer<typeof SweepStep>>, prefix: Array<string | number>): void => {
    for (const [i, step] of steps.entries()) {
      const base: Array<string | number> = [...prefix, i]
      if ('nodes' in step) step.nodes.forEach((n, j) => { check(n, [...base, 'nodes', j]) })
      if ('node' in step) check(step.node, [...base, 'node'])
      if ('target' in step) {
        const t = step.target
        t.around?.forEach((n, j) => { check(n, [...base, 'target', 'around', j]) })
        t.from?.forEach((n, j) => { check(n, [...base, 'target', 'from', j]) })
        t.to?.forEach((n, j) => { check(n, [...base, 'target', 'to', j]) })
        t.between?.forEach((group, g) => { group.forEach((n, j) => { check(n, [...base, 'target', 'between', g, j]) }) })
        t.links?.forEach((l, j) => { for (const n of l.split('->')) check(n, [...base, 'target', 'links', j]) })
      }
      if (step.action === 'share') shared.add(step.as)
      if ((step.action === 'search' || step.action === 'download') && !shared.has(step.file)) {
        ctx.addIssue({ code: 'custom', path: [...base, 'file'], message: `file "${step.file}" is not shared by an earlier "share" step (as: ${step.file})` })
      }
      if (step.action === 'wait') {
        const inner = Object.values(step.until)[0] as { node: string, peers?: string[] }
        check(inner.node, [...base, 'until', 'node'])
        inner.peers?.forEach((p, j) => { check(p, [...base, 'until', 'peers', j]) })
      }
      if (step.action === 'assert') {
        const inner = Object.values(step.check)[0] as { node: string, peers?: string[], afterStep?: number }
        check(inner.node, [...base, 'check', 'node'])
        if (prefix.length === 1 && inner.afterStep != null && inner.afterStep >= i) {
          ctx.addIssue({ code: 'custom', path: [...base, 'check', 'afterStep'], message: `afterStep must name an earlier step (0–${i - 1})` })
        }
      }
      if (step.action === 'sweep') {
        if (!(step.parameter in step.toxic)) {
          ctx.addIssue({ code: 'custom', path: [...base, 'parameter'], message: `"${step.parameter}" is not an attribute of a ${step.toxic.type} toxic; use one of ${Object.keys(step.toxic).filter(k => k !== 'type').join(', ')}` })
        }
        checkSteps(step.steps, [...base, 'steps'])
      }
    }
  }
  checkSteps(s.steps, ['steps'])
})

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
