import { z } from 'zod'
import { MultiaddrInputSchema } from './schemas.ts'
import { toRealMs, UNSCALED } from './timing.ts'

/**
 * The plan's intervals, timeouts and thresholds, in one validated object. Every timing constant in chiral-sim
 * lives here: scenarios compress time through `timeScale`, never by editing a number elsewhere.
 *
 * Values are the plan's real-time figures; `scaled()` applies `timeScale` (nodes/timing.ts, the one rule) to the
 * durations in SCALED_TIMING_KEYS. The quantities nodes/timing.ts lists as UNSCALED (latency thresholds, the 5 s
 * ping deadline, libp2p's own admission, DHT and dial deadlines) keep their real value at every timeScale.
 */
/**
 * Risk #1: a connection attempt's timeout is configurable from 5 to 30 s. The one definition of that range: node
 * timing, the `connectWithTimeout` command and the scenarios' `connect` step all take it from here.
 */
export const CONNECTION_TIMEOUT_RANGE_MS = { min: 5_000, max: 30_000 } as const

/** A connection timeout in plan ms, checked against the plan's range with a message that names `field`. */
export function connectionTimeoutMs (field: string): z.ZodNumber {
  const { min, max } = CONNECTION_TIMEOUT_RANGE_MS
  return z.number().int()
    .min(min, `${field} must be at least ${min} (the plan allows 5–30 s)`)
    .max(max, `${field} must be at most ${max} (the plan allows 5–30 s)`)
}

/**
 * The longest duration chiral-sim accepts anywhere (one day): above 2^31 - 1 ms Node fires a timer after 1 ms, so
 * an unbounded duration would silently become "at once". Every duration field is bounded by this.
 */
export const MAX_DURATION_MS = 86_400_000

/** 0 < timeScale ≤ 1: 1 = the plan's real timings, 0.1 runs every plan duration ten times faster. */
export const TimeScaleSchema = z.number().positive().max(1)

/** A duration field in ms: a whole number from `min` to MAX_DURATION_MS. */
export function durationMs (min = 0): z.ZodNumber {
  return z.number().int().min(min).max(MAX_DURATION_MS, `at most ${MAX_DURATION_MS} ms (one day)`)
}

export const PlanTimingFields = z.object({
  /** Solution #1.2: configurable, default 10 s, range 5–30 s (Risk #1). */
  connectionTimeoutMs: connectionTimeoutMs('connectionTimeoutMs').default(10_000),
  /** Solution #1.3: a "busy" bootstrap is retried with a 15 s timeout. */
  busyRetryTimeoutMs: connectionTimeoutMs('busyRetryTimeoutMs').default(15_000),
  /** Solution #1.3: max 2 retries before failing completely. */
  maxRetries: z.number().int().min(0).max(5).default(2),
  /** Solution #2.5: health check every 30 s. */
  healthCheckIntervalMs: durationMs(100).default(30_000),
  /**
   * Solution #4.4: a DHT that does not answer a ping within 5 s is frozen. Not scaled: it bounds a latency
   * measurement, and a compressed deadline would call a merely slow bootstrap unreachable.
   */
  healthPingTimeoutMs: durationMs(100).default(5_000),
  /** Solution #2.3: keep the last 20 checks. */
  healthHistorySize: z.number().int().min(1).max(10_000).default(20),
  /** Solution #2.3: uptime percentage over the last hour. */
  uptimeWindowMs: durationMs(1_000).default(3_600_000),
  /** Solution #2.6: green below 200 ms. */
  healthyLatencyMs: z.number().int().min(1).default(200),
  /** Solution #2.6: yellow from 200 to 500 ms. */
  degradedLatencyMs: z.number().int().min(1).default(500),
  /** Solution #2.7: latency above `degradedLatencyMs` on 3 consecutive checks warns the user. */
  highLatencyConsecutiveChecks: z.number().int().min(1).default(3),
  /** Solution #2.7: unreachable for 2 minutes raises the prominent alert. */
  unreachableAlertMs: durationMs(100).default(120_000),
  /**
   * Solution #3.1: verification waits up to 3 s after the bootstrap connection for the Kademlia walk. Not scaled:
   * it waits for libp2p's own (uncompressible) admission, and ends early once the routing table has an entry.
   */
  discoveryVerificationDelayMs: durationMs(0).default(3_000),
  /** Solution #3.10: poll every 2 s for newly discovered peers. */
  discoveryPollIntervalMs: durationMs(50).default(2_000),
  /**
   * Test 3: mutual visibility within 15 s of the second peer connecting. Real time, not scaled: it bounds libp2p's
   * own discovery (dials, identify, the Kademlia admission), which compressed time does not make faster.
   */
  bidirectionalDiscoveryTimeoutMs: durationMs(100).default(15_000),
  /**
   * Deadline for one DHT query (put, get, findProviders, findPeer) so a verification step can never hang. Not in
   * the plan, and not scaled: it bounds real network work that compressed time does not make faster.
   */
  dhtQueryTimeoutMs: durationMs(100).default(10_000),
  /** Deadline for dialling a discovered peer during verification (not scaled, like the DHT query deadline). */
  peerDialTimeoutMs: durationMs(100).default(10_000),
  /** How often the countdown event is emitted while a connection attempt runs (the plan's UI countdown). */
  countdownIntervalMs: durationMs(100).default(1_000),
  /**
   * 1 = the plan's real timings. 0.1 runs every interval and timeout ten times faster. The report states it.
   * Latency thresholds are not scaled: they compare measured round trips.
   */
  timeScale: TimeScaleSchema.default(1)
}).strict()

export const PlanTimingSchema = PlanTimingFields.superRefine((t, ctx) => {
  if (t.healthyLatencyMs >= t.degradedLatencyMs) {
    ctx.addIssue({ code: 'custom', path: ['healthyLatencyMs'], message: `healthyLatencyMs (${t.healthyLatencyMs}) must be below degradedLatencyMs (${t.degradedLatencyMs})` })
  }
})

/**
 * An object's fields, all optional and without their defaults: overrides layered over values that come from
 * elsewhere (the plan's timing, a node's DHT options, an external bootstrap's protocol). zod's partial() keeps
 * defaults — `z.object({ a: z.string().default('x') }).partial().parse({})` is `{ a: 'x' }` — so an override
 * written that way silently replaces every value it does not mention.
 */
export function overridesOf<T extends z.ZodObject> (schema: T): z.ZodType<Partial<z.output<T>>> {
  const fields = Object.entries(schema.shape as Record<string, z.ZodType>).map(([key, field]) =>
    [key, (field instanceof z.ZodDefault ? field.unwrap() as z.ZodType : field).optional()])
  return z.object(Object.fromEntries(fields)).strict() as unknown as z.ZodType<Partial<z.output<T>>>
}

/** Timing overrides that a scenario or a node layers over the plan's values (timeScale is the run's, not theirs). */
export const PlanTimingOverridesSchema = overridesOf(PlanTimingFields.omit({ timeScale: true }))

export type PlanTimingInput = z.input<typeof PlanTimingSchema>
export type PlanTiming = z.output<typeof PlanTimingSchema>

/** The plan durations that `timeScale` compresses; every other `…Ms` field is in nodes/timing.ts's UNSCALED. */
export const SCALED_TIMING_KEYS = [
  'connectionTimeoutMs', 'busyRetryTimeoutMs', 'healthCheckIntervalMs', 'uptimeWindowMs',
  'unreachableAlertMs', 'discoveryPollIntervalMs', 'countdownIntervalMs'
] as const satisfies ReadonlyArray<Exclude<keyof PlanTiming, keyof typeof UNSCALED>>

/** The timing with `timeScale` applied to every duration: what the nodes actually wait. */
export function scaled (timing: PlanTiming): PlanTiming {
  const out = { ...timing }
  for (const key of SCALED_TIMING_KEYS) out[key] = toRealMs(timing[key], timing.timeScale)
  return out
}

export const TransportSchema = z.enum(['memory', 'tcp'])
export type Transport = z.infer<typeof TransportSchema>

export const DhtModeSchema = z.enum(['server', 'client'])
export const AddressMapperSchema = z.enum(['passthrough', 'removePrivate', 'removePublic'])

export const DhtOptionsSchema = z.object({
  /**
   * kad-dht decides client/server from the node's addresses unless told; loopback TCP nodes would silently become
   * clients that nobody adds (cause 1 of asymmetric discovery). chiral-sim always sets it explicitly.
   */
  mode: DhtModeSchema.default('server'),
  /** Nodes only talk DHT when their protocol names match (cause 7). */
  protocol: z.string().regex(/^\//, 'a DHT protocol name starts with "/", e.g. /chiral/kad/1.0.0').default('/chiral/kad/1.0.0'),
  /** The default kad-dht mapper drops loopback addresses (cause 2), so the harness defaults to passthrough. */
  addressMapper: AddressMapperSchema.default('passthrough'),
  /**
   * First self-query. kad-dht waits 1 s by default; chiral-sim starts it at once, since a query on an empty table
   * waits for the first routing-table entry anyway (measured: two peers mutually visible in a median of 10 ms
   * instead of 978 ms, bench/RESULTS.md). `null` disables self-queries, reproducing a late-joiner gap.
   */
  initialQuerySelfIntervalMs: durationMs(0).nullable().default(0),
  /**
   * The prefix of this node's ping protocol. kad-dht pings a contact over `/ipfs/ping/1.0.0` before admitting it,
   * so a node answering ping elsewhere is never admitted by others (cause 5 of asymmetric discovery).
   */
  pingProtocolPrefix: z.string().regex(/^[a-z0-9-]+$/).default('ipfs'),
  /**
   * Query parallelism. js kad-dht's defaults (alpha 10, 20 disjoint paths) reach most of a small network in one
   * query, which is what dominates a large in-process simulation (bench/RESULTS.md); go-libp2p walks with alpha 3
   * on one path. Unset: kad-dht's own defaults.
   */
  alpha: z.number().int().min(1).max(100).optional(),
  disjointPaths: z.number().int().min(1).max(100).optional()
}).strict()
export type DhtOptions = z.output<typeof DhtOptionsSchema>
/** DHT options a scenario writes for a node: only what it names, so the rest can come from elsewhere. */
export const DhtOverridesSchema = overridesOf(DhtOptionsSchema)

/** Printable text, as identify carries it; a bound keeps a typo from becoming a megabyte in every identify answer. */
export const AgentVersionSchema = z.string().min(1).max(256).regex(/^[\x20-\x7e]+$/, 'printable ASCII, e.g. "chiral-network/1.2.0"')

/** A multiaddr that parses (nodes/schemas.ts, the one check) on a transport the nodes have. */
const MultiaddrString = MultiaddrInputSchema.regex(/^\/(ip4|ip6|dns4|dns6|dns|memory)\//, 'a multiaddr such as /ip4/127.0.0.1/tcp/4001/p2p/12D3… or /memory/boot/p2p/12D3…')

export const NodeConfigSchema = z.object({
  /** The harness's name for the node: events, matrices and reports use it. */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." or "-", at most 64 characters'),
  role: z.enum(['bootstrap', 'peer']),
  transport: TransportSchema.default('memory'),
  /** Listen addresses; default: `/memory/<name>-<seed>` or `/ip4/127.0.0.1/tcp/0`. */
  listen: z.array(MultiaddrString).optional(),
  /**
   * Addresses announced through identify and the DHT. Toxiproxy faults only work when peers dial these proxied
   * addresses, so the harness sets them for faulted links.
   */
  announce: z.array(MultiaddrString).optional(),
  /** Deterministic identity: the same seed gives the same peer ID, so a restarted bootstrap keeps its address. */
  identitySeed: z.string().min(1),
  /**
   * What identify tells other nodes this node is. Bootstraps with an admission policy close the connection of
   * agents they do not accept right after identify; unset: js-libp2p's own ("js-libp2p/<version> …").
   */
  agentVersion: AgentVersionSchema.optional(),
  dht: DhtOptionsSchema.default(DhtOptionsSchema.parse({})),
  /** Peer only: bootstrap multiaddrs (with /p2p/), tried in order until one succeeds (failover). */
  bootstrapAddrs: z.array(MultiaddrString).default([]),
  /**
   * Bootstrap only: above this many connected peers the bootstrap answers "busy". libp2p's own limit is set above
   * it so that the refusal is an answer the client can categorize, not a reset socket.
   */
  maxPeers: z.number().int().min(1).max(100_000).default(1_000),
  timing: PlanTimingSchema.default(PlanTimingSchema.parse({})),
  /**
   * How this node may reach the others when links go through fault proxies: the real addresses of other nodes are
   * never dialled (identify and the DHT spread them, and a dial to one would route around the fault), and each
   * other node is known by the proxied address of this node's link to it.
   */
  network: z.object({
    denyDial: z.array(MultiaddrString).default([]),
    routes: z.array(z.object({ peerId: z.string(), addrs: z.array(MultiaddrString).min(1) }).strict()).default([])
  }).strict().default({ denyDial: [], routes: [] }),
  /**
   * libp2p's connection monitor pings every open connection at this interval and closes one that does not answer:
   * it finds half-open TCP connections. Memory connections cannot go half-open, and its pings were half the CPU
   * of an idle 100-peer simulation (bench/RESULTS.md), so by default it runs on TCP only (every 10 s, libp2p's
   * default). `null` turns it off, a number sets the interval.
   */
  connectionMonitorIntervalMs: durationMs(1_000).nullable().optional(),
  /** Start the BootstrapMonitor as soon as a connection succeeds (Solution #2.5). */
  autoMonitor: z.boolean().default(true),
  /**
   * When the monitor turns red and other bootstraps are configured, reconnect through them (fastest known first,
   * the failed one last): the plan's multi-bootstrap failover applied mid-session, not only at start-up.
   */
  autoFailover: z.boolean().default(true),
  /** Run verifyPeerDiscovery `discoveryVerificationDelayMs` after a successful connect (Solution #3.1). */
  autoVerify: z.boolean().default(false)
}).strict()

export type NodeConfigInput = z.input<typeof NodeConfigSchema>
export type NodeConfig = z.output<typeof NodeConfigSchema>
