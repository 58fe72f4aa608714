import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'

/**
 * Values a command receives as text and a node later parses. They are checked here, when the request is parsed,
 * so that bad input is a 400 naming the field instead of an exception deep in libp2p (a 500) or, worse, a
 * success: a CID that fails later inside a DHT query, base64 that Node decodes leniently into other bytes.
 */
const parses = (parse: (s: string) => unknown) => (s: string): boolean => {
  try {
    parse(s)
    return true
  } catch {
    return false
  }
}

export const PeerIdInputSchema = z.string().refine(parses(peerIdFromString), 'not a peer ID; expected e.g. 12D3KooW…')

export const MultiaddrInputSchema = z.string().refine(parses(s => {
  // A multiaddr whose /p2p/ part is not a peer ID parses, and fails only when dialled.
  const id = multiaddr(s).getComponents().findLast(c => c.name === 'p2p')?.value
  if (id != null) peerIdFromString(id)
}), 'not a multiaddr; expected e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…')

export const CidInputSchema = z.string().refine(parses(s => CID.parse(s)), 'not a CID; expected e.g. bafkrei…')

/** Standard base64 with padding, strictly: Node's decoder skips invalid characters instead of refusing them. */
export const Base64Schema = z.string().refine(
  // A repeated group ((?:x{4})*) overflows V8's regexp stack on a few MB (a 5 MiB shareFile answered 500 RangeError):
  // one character class and the length do the same check in linear time.
  s => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s),
  'not base64 (standard alphabet, padded with "=")'
)

/** Plan Solution #1.4: the categories `categorizeBootstrapError` maps every dial failure to. */
export const ErrorCategorySchema = z.enum(['timeout', 'refused', 'unreachable', 'already-connected', 'busy', 'protocol', 'rejected', 'unknown'])
export type ErrorCategory = z.infer<typeof ErrorCategorySchema>

export const CategorizedErrorSchema = z.object({
  category: ErrorCategorySchema,
  /** The plan's user-facing message for the category. */
  message: z.string(),
  suggestedAction: z.string(),
  /** The underlying error's class and message, looked through wrappers to the cause. */
  detail: z.string()
})
export type CategorizedError = z.infer<typeof CategorizedErrorSchema>

export const AttemptOutcomeSchema = z.union([z.literal('success'), ErrorCategorySchema])

/** One connection attempt (Solution #1.3 and #1.6: every attempt is recorded with its timestamps and outcome). */
export const ConnectionAttemptSchema = z.object({
  attempt: z.number().int().min(1),
  bootstrap: z.string(),
  timeoutMs: z.number().int(),
  startedAt: z.number(),
  endedAt: z.number(),
  durationMs: z.number(),
  outcome: AttemptOutcomeSchema,
  error: CategorizedErrorSchema.optional()
})
export type ConnectionAttempt = z.infer<typeof ConnectionAttemptSchema>

export const ConnectResultSchema = z.object({
  success: z.boolean(),
  /** The bootstrap the node ended on (failover tells which one). */
  bootstrap: z.string().optional(),
  attempts: z.array(ConnectionAttemptSchema),
  error: CategorizedErrorSchema.optional()
})
export type ConnectResult = z.infer<typeof ConnectResultSchema>

/** Plan Solution #2.1 (the plan's `peerCountViaBoostrap` typo is corrected). */
export const BootstrapHealthSchema = z.object({
  address: z.string(),
  isReachable: z.boolean(),
  latencyMs: z.number().nullable(),
  lastCheckTimestamp: z.number(),
  errorMessage: z.string().nullable(),
  peerCountViaBootstrap: z.number().int()
})
export type BootstrapHealth = z.infer<typeof BootstrapHealthSchema>

/** Plan Solution #2.6: green < 200 ms, yellow 200–500 ms, red unreachable; unknown before the first check. */
export const HealthStatusSchema = z.enum(['green', 'yellow', 'red', 'unknown'])
export type HealthStatus = z.infer<typeof HealthStatusSchema>

export const MonitorStateSchema = z.object({
  running: z.boolean(),
  status: HealthStatusSchema,
  address: z.string().nullable(),
  history: z.array(BootstrapHealthSchema),
  /** Percentage of checks within the uptime window that found the bootstrap reachable; null before any check. */
  uptimePercent: z.number().nullable(),
  consecutiveHighLatency: z.number().int(),
  unreachableSince: z.number().nullable(),
  warningActive: z.boolean(),
  alertActive: z.boolean()
})
export type MonitorState = z.infer<typeof MonitorStateSchema>

/** Plan Solution #3.8. */
export const DiscoveryOverallSchema = z.enum(['verified', 'partial', 'failed', 'unknown'])
export const DiscoveryStatusSchema = z.object({
  bootstrapConnected: z.boolean(),
  routingTablePopulated: z.boolean(),
  eventsWorking: z.boolean(),
  dhtReadWrite: z.boolean(),
  peerDialing: z.boolean(),
  fileDiscovery: z.boolean(),
  overall: DiscoveryOverallSchema,
  /** True when the network holds no other peer: "No peers online yet - you might be first", not an error. */
  firstPeer: z.boolean(),
  routingTableSize: z.number().int(),
  discoveredPeers: z.array(z.string()),
  /**
   * The discovered peers the peerDialing check could not dial, each with its error (a `refused:` one is a peer that
   * left: stale, not a failure). Optional: other implementations of the control contract may not say.
   */
  unreachable: z.array(z.object({ peerId: z.string(), error: z.string() })).optional(),
  /** Which checks were skipped as not applicable (fileDiscovery with no shared files; peerDialing with no peers). */
  skipped: z.array(z.string()),
  message: z.string()
})
export type DiscoveryStatus = z.infer<typeof DiscoveryStatusSchema>

export const DhtTestResultSchema = z.object({ success: z.boolean(), latencyMs: z.number(), error: z.string().optional() })
export const ReachabilitySchema = z.object({
  reachable: z.boolean(), address: z.string().optional(), latencyMs: z.number().optional(), error: z.string().optional()
})

/** Plan Solution #1.6 and #3.11: every metric the plan names. */
export const DhtMetricsSchema = z.object({
  connectionAttempts: z.array(ConnectionAttemptSchema),
  lastConnectionError: CategorizedErrorSchema.nullable(),
  lastPeerDiscoveryTime: z.number().nullable(),
  totalPeersDiscovered: z.number().int(),
  discoveryQueries: z.number().int(),
  discoveryQueriesSucceeded: z.number().int(),
  /** Share of discovery queries (DHT tests, lookups, provider queries) that succeeded; null before any. */
  discoverySuccessRate: z.number().nullable(),
  kadRoutingTableSize: z.number().int(),
  lastSuccessfulDhtWrite: z.number().nullable(),
  lastSuccessfulDhtRead: z.number().nullable(),
  /** Solution #3.8 (metrics): time from bootstrap connection to a populated routing table. */
  bootstrapWalkDurationMs: z.number().nullable()
})
export type DhtMetrics = z.infer<typeof DhtMetricsSchema>

export const ConnectionInfoSchema = z.object({
  peerId: z.string(),
  remoteAddr: z.string(),
  direction: z.enum(['inbound', 'outbound']),
  status: z.string(),
  /** Set when the connection is limited (relayed): kad-dht does not run over it (cause 6). */
  limited: z.boolean(),
  openedAt: z.number()
})

export const KnownPeerSchema = z.object({
  peerId: z.string(),
  addresses: z.array(z.string()),
  /** The addresses that survive this node's DHT address mapper: empty means the DHT drops the peer (cause 2). */
  mappedAddresses: z.array(z.string()),
  protocols: z.array(z.string()),
  /** Identify completed for this peer (its protocols are known). */
  identified: z.boolean()
})

/**
 * What a node can say about itself for the who-sees-whom matrix and the asymmetry diagnosis. Everything the
 * diagnosis needs must be here: the runner never reaches into a live node after the run.
 */
export const NodeInspectionSchema = z.object({
  name: z.string(),
  role: z.enum(['bootstrap', 'peer']),
  peerId: z.string(),
  running: z.boolean(),
  multiaddrs: z.array(z.string()),
  dhtMode: z.enum(['client', 'server']),
  dhtProtocol: z.string(),
  addressMapper: z.string(),
  protocols: z.array(z.string()),
  routingTable: z.array(z.string()),
  connections: z.array(ConnectionInfoSchema),
  knownPeers: z.array(KnownPeerSchema),
  discoveredPeerIds: z.array(z.string()),
  /** Peers whose admission ping failed (cause 5). */
  pingFailures: z.array(z.string()),
  /** Bootstrap only: peers refused as busy. */
  busyRefusals: z.number().int(),
  /** Outbound dials that failed, by peer (cause 8: A cannot dial B). */
  dialFailures: z.array(z.object({ peerId: z.string(), category: ErrorCategorySchema, detail: z.string(), at: z.number() }))
})
export type NodeInspection = z.infer<typeof NodeInspectionSchema>

export const NodeInfoSchema = z.object({
  name: z.string(),
  role: z.enum(['bootstrap', 'peer']),
  peerId: z.string(),
  multiaddrs: z.array(z.string()),
  dhtProtocol: z.string(),
  versions: z.object({ node: z.string(), libp2p: z.string(), kadDht: z.string() })
})
export type NodeInfo = z.infer<typeof NodeInfoSchema>

export const FileRecordSchema = z.object({ cid: z.string(), name: z.string(), size: z.number().int(), sha256: z.string() })
export const DownloadResultSchema = z.object({
  success: z.boolean(),
  cid: z.string(),
  provider: z.string().optional(),
  size: z.number().int().optional(),
  hashVerified: z.boolean(),
  durationMs: z.number(),
  error: z.string().optional()
})
