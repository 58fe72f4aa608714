import { z } from 'zod'
import { NodeEventSchema } from '../nodes/events.ts'
import { ErrorCategorySchema } from '../nodes/schemas.ts'

/**
 * The RunRecord: everything a run observed, with times. It is the single source of every output — reports are
 * pure functions of it, and no assertion reaches into a live node after the run.
 */
export const ModeSchema = z.enum(['memory', 'tcp', 'process', 'docker', 'swarm', 'shards'])
export type Mode = z.infer<typeof ModeSchema>

export const ScenarioStatusSchema = z.enum(['passed', 'failed', 'error', 'skipped'])
export type ScenarioStatus = z.infer<typeof ScenarioStatusSchema>

export const AssertionResultSchema = z.object({
  /** Stable id within the scenario, e.g. "timeout-within-10s". */
  id: z.string(),
  description: z.string(),
  /** Where in the plan the expectation comes from, e.g. "Test 2 / Expected Results". */
  planRef: z.string().optional(),
  expected: z.string(),
  actual: z.string(),
  passed: z.boolean(),
  /** Index of the step that made the check. */
  step: z.number().int().optional(),
  at: z.number()
})
export type AssertionResult = z.infer<typeof AssertionResultSchema>

export const StepRecordSchema = z.object({
  index: z.number().int(),
  /** The step's kind as written in the scenario (start, kill, fault, assert, …). */
  kind: z.string(),
  /** Human summary, e.g. "kill boot", "latency 300ms on boot links". */
  label: z.string(),
  startedAt: z.number(),
  endedAt: z.number(),
  ok: z.boolean(),
  error: z.string().optional(),
  /** Node names the step acted on (for correlating with node events, e.g. failure detection after a kill). */
  targets: z.array(z.string()).default([])
})
export type StepRecord = z.infer<typeof StepRecordSchema>

export const SeesCellSchema = z.object({
  from: z.string(),
  to: z.string(),
  inRoutingTable: z.boolean(),
  discovered: z.boolean(),
  /** null when the lookup was not performed. */
  foundByLookup: z.boolean().nullable(),
  dialable: z.boolean().nullable(),
  /** The verdict used for symmetry: in the routing table (see sim/runner/matrix.ts). */
  sees: z.boolean()
})

export const AsymmetryCauseSchema = z.enum([
  'client-mode', 'address-mapper', 'bootstrap-limits', 'join-order', 'ping-check', 'identify', 'protocol-mismatch', 'one-way-fault',
  /** Connected and identified, both on the DHT: the routing-table admission (kad-dht pings first) has not finished. */
  'admission-pending',
  /** Mutual blindness only: the shared bootstrap answered the peers' lookups with no peers (it filters what it returns). */
  'empty-answers',
  /** Mutual blindness only: the peers joined through different bootstraps that do not know each other. */
  'no-shared-bootstrap',
  /** Mutual blindness only: each holds the other in its routing table, and neither can dial it (a fault each way). */
  'unreachable-both-ways',
  'unknown'
])
export type AsymmetryCause = z.infer<typeof AsymmetryCauseSchema>

export const AsymmetrySchema = z.object({
  /** `sees` sees `unseen`… */
  sees: z.string(),
  /** …but `unseen` does not see `sees`. */
  unseen: z.string(),
  cause: AsymmetryCauseSchema,
  explanation: z.string(),
  /** The node-state facts the diagnosis rests on. */
  evidence: z.array(z.string())
})
export type Asymmetry = z.infer<typeof AsymmetrySchema>

/**
 * Two running peers, connected to the same bootstrap, of which neither sees the other: the plan's "both connected
 * but neither sees the other → DHT queries failing". Not an asymmetry (nothing is one-sided), and a failure all the
 * same: a matrix expectation fails on it unless it lists the pair.
 */
export const BlindPairSchema = z.object({
  peers: z.tuple([z.string(), z.string()]),
  /** The bootstrap both joined through. */
  bootstrap: z.string(),
  cause: AsymmetryCauseSchema,
  explanation: z.string(),
  evidence: z.array(z.string())
})
export type BlindPair = z.infer<typeof BlindPairSchema>

export const MatrixSchema = z.object({
  /** Peer names in matrix order (bootstraps excluded). */
  peers: z.array(z.string()),
  at: z.number(),
  cells: z.array(SeesCellSchema),
  asymmetries: z.array(AsymmetrySchema),
  blind: z.array(BlindPairSchema).default([]),
  /** How long the matrix waited for routing-table admissions already under way (see sim/runner/matrix.ts). */
  settledMs: z.number().optional()
})
export type Matrix = z.infer<typeof MatrixSchema>

/**
 * What a node printed, for nodes that are a process or a container of their own (process and docker modes,
 * external nodes): the reason a node misbehaved is often only there (a stack trace, a bind error, a panic).
 */
export const NodeOutputSchema = z.object({
  /**
   * The end of each start's output (stdout and stderr interleaved; a chiral node's stdout holds only its ready
   * line), oldest start first, bounded (sim/backends/output-tail.ts).
   */
  text: z.string(),
  /** Starts of the node whose output the text holds (a supervised bootstrap restarts). */
  starts: z.number().int().min(0)
})
export type NodeOutput = z.infer<typeof NodeOutputSchema>
/** One matrix step's snapshot: every matrix of a run is kept, not only the last. */
export const StepMatrixSchema = z.object({
  step: z.number().int(),
  label: z.string().optional(),
  /** Whether the step's expectation held; absent when it had none. */
  passed: z.boolean().optional(),
  matrix: MatrixSchema
})
export type StepMatrix = z.infer<typeof StepMatrixSchema>

export const NodeRecordSchema = z.object({
  name: z.string(),
  role: z.enum(['bootstrap', 'peer', 'external']),
  peerId: z.string().optional(),
  multiaddrs: z.array(z.string()).default([]),
  output: NodeOutputSchema.optional()
})

/** A fault applied through Toxiproxy, for the timeline and the sweep charts. */
export const FaultRecordSchema = z.object({
  step: z.number().int(),
  link: z.string(),
  kind: z.string(),
  attributes: z.record(z.string(), z.unknown()),
  appliedAt: z.number(),
  removedAt: z.number().nullable()
})

/** One point of a sweep: the swept parameter's value and what the checks measured there. */
/** Rates are percentages (0–100), as the reports plot them. */
export const SweepPointSchema = z.object({
  parameter: z.string(),
  value: z.number(),
  connectionSuccessRate: z.number().nullable(),
  discoverySuccessRate: z.number().nullable(),
  samples: z.number().int()
})

/**
 * The harness's own health while a scenario ran (sim/runner/harness-health.ts): when it was overloaded, timeouts
 * and partial verifications may be the harness's, not the network's, and the report says so next to the verdict.
 */
export const HarnessHealthSchema = z.object({
  /** How late the harness's event loop ran (every in-process node of a thread shares it), in real ms. */
  eventLoopLagMs: z.object({ mean: z.number(), p99: z.number(), max: z.number() }),
  /**
   * CPU time of the harness over wall time, in % of one core (can exceed 100 on several cores): the whole process
   * for the run, and for a scenario run in a worker thread (run.workers) that thread's alone.
   */
  processCpuPercent: z.number(),
  /** Share of all CPUs' time that was busy (every process on the machine), in %; null when unknown. */
  hostCpuBusyPercent: z.number().nullable(),
  cpus: z.number().int(),
  /** One-minute load average at the end (0 on platforms without one). */
  loadAverage: z.number(),
  overloaded: z.boolean(),
  overloadReason: z.string().optional()
})
export type HarnessHealth = z.infer<typeof HarnessHealthSchema>

export const ScenarioRecordSchema = z.object({
  name: z.string(),
  title: z.string(),
  description: z.string().default(''),
  /** The plan's test number (1–6) when the scenario is one of the plan's six tests. */
  planTest: z.number().int().min(1).max(6).optional(),
  tags: z.array(z.string()).default([]),
  file: z.string().optional(),
  status: ScenarioStatusSchema,
  /** Why a scenario was skipped or errored (e.g. "needs process or docker mode"). */
  reason: z.string().optional(),
  /** Set when the run cannot be trusted (e.g. traffic bypassed a faulted link's proxy): never reported as passed. */
  invalid: z.string().optional(),
  mode: ModeSchema,
  seed: z.number().int(),
  timeScale: z.number(),
  startedAt: z.number(),
  endedAt: z.number(),
  durationMs: z.number(),
  nodes: z.array(NodeRecordSchema),
  steps: z.array(StepRecordSchema),
  assertions: z.array(AssertionResultSchema),
  events: z.array(NodeEventSchema),
  /** The last matrix step's snapshot (see `matrices` for all of them). */
  matrix: MatrixSchema.optional(),
  matrices: z.array(StepMatrixSchema).optional(),
  faults: z.array(FaultRecordSchema).default([]),
  sweep: z.array(SweepPointSchema).optional(),
  /** Supervisor restarts observed (Solution #4), for autoRecoveryRate. */
  recoveries: z.array(z.object({
    node: z.string(), failedAt: z.number(), detectedAt: z.number().nullable(), recoveredAt: z.number().nullable(), automatic: z.boolean()
  })).default([]),
  /**
   * Checks that could not be made because a node does not implement the command they need (a peer of another
   * implementation answers "not-supported"); the scenario is then an error, never a pass.
   */
  uncheckable: z.array(z.object({ step: z.number().int(), label: z.string(), message: z.string() })).optional(),
  /** The harness's own health while the scenario ran (absent in records from before it was measured). */
  harness: HarnessHealthSchema.optional(),
  /** The real-ms deadline the scenario ran under and how it follows from the scenario's plan times. */
  deadline: z.object({ ms: z.number(), allowanceMs: z.number(), planMs: z.number() }).optional()
})
export type FaultRecord = z.infer<typeof FaultRecordSchema>
export type SweepPoint = z.infer<typeof SweepPointSchema>
export type ScenarioRecord = z.infer<typeof ScenarioRecordSchema>
export type ScenarioRecordInput = z.input<typeof ScenarioRecordSchema>

export const RunRecordSchema = z.object({
  schemaVersion: z.literal(1),
  run: z.object({
    id: z.string(),
    startedAt: z.number(),
    endedAt: z.number(),
    seed: z.number().int(),
    mode: ModeSchema,
    timeScale: z.number(),
    versions: z.object({ node: z.string(), libp2p: z.string(), kadDht: z.string(), chiralSim: z.string() }),
    host: z.object({ platform: z.string(), arch: z.string(), cpus: z.number().int(), memoryMiB: z.number() }),
    argv: z.array(z.string()).default([]),
    /** Ctrl-C (or SIGTERM) ended the run early: its scenarios' data is partial, those not started were not run. */
    interrupted: z.boolean().default(false),
    /** The harness's health over the whole run (absent in records from before it was measured). */
    harness: HarnessHealthSchema.optional(),
    /**
     * Worker threads the scenarios were spread over (absent: all ran in the harness's main thread). Each scenario's
     * `harness` is then its own thread's: that thread's event loop and CPU.
     */
    workers: z.number().int().min(2).optional()
  }),
  scenarios: z.array(ScenarioRecordSchema)
})
export type RunRecord = z.infer<typeof RunRecordSchema>

