import { z } from 'zod'
import {
  BootstrapHealthSchema, CategorizedErrorSchema, DiscoveryStatusSchema, ErrorCategorySchema, HealthStatusSchema, AttemptOutcomeSchema
} from './schemas.ts'

/**
 * Everything a node does that the plan's UI would show, as one typed stream. The harness builds timelines,
 * KPIs and diagnoses from it, so an event carries facts (times, addresses, outcomes), not prose alone.
 */
const e = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.object({ type: z.literal(type), ...shape })

export const NodeEventBodySchema = z.discriminatedUnion('type', [
  e('node:started', { peerId: z.string(), multiaddrs: z.array(z.string()) }),
  e('node:stopped', {}),
  /** Solution #1.5: which bootstrap is being tried, with which timeout. */
  e('connect:attempt', { attempt: z.number().int(), bootstrap: z.string(), timeoutMs: z.number() }),
  /** Solution #1.5: the countdown shown while an attempt runs. */
  e('connect:countdown', { bootstrap: z.string(), remainingMs: z.number() }),
  e('connect:result', {
    attempt: z.number().int(), bootstrap: z.string(), outcome: AttemptOutcomeSchema, durationMs: z.number(),
    error: CategorizedErrorSchema.optional()
  }),
  /** Solution #1.3: the next attempt and why. */
  e('connect:retry', { attempt: z.number().int(), bootstrap: z.string(), timeoutMs: z.number(), reason: ErrorCategorySchema }),
  e('connect:done', { success: z.boolean(), bootstrap: z.string().optional(), attempts: z.number().int(), error: CategorizedErrorSchema.optional() }),
  e('health:check', { health: BootstrapHealthSchema, status: HealthStatusSchema }),
  e('health:status', { from: HealthStatusSchema, to: HealthStatusSchema, address: z.string() }),
  /** Solution #2.7: latency > 500 ms on 3 consecutive checks. */
  e('health:warning', { address: z.string(), consecutive: z.number().int(), latencyMs: z.number(), message: z.string() }),
  /** Solution #2.7: unreachable for 2 minutes. */
  e('health:alert', { address: z.string(), unreachableForMs: z.number(), message: z.string() }),
  /**
   * One outage as the monitor saw it, from its first unreachable check to its first reachable one: within one check
   * interval of the real outage, and two outages closer than a check interval may read as one. Real ms, like every
   * duration in an event payload (plan = real ÷ timeScale, nodes/timing.ts).
   */
  e('health:recovered', { address: z.string(), downtimeMs: z.number() }),
  e('monitor:started', { address: z.string(), intervalMs: z.number() }),
  e('monitor:stopped', {}),
  /** Solution #3.9: the progressive phases of discovery. */
  e('discovery:phase', {
    phase: z.enum(['connected', 'populating', 'verifying', 'verified', 'partial', 'failed', 'unknown', 'first-peer', 'slow']),
    message: z.string()
  }),
  e('discovery:step', { step: z.string(), ok: z.boolean(), detail: z.string() }),
  e('discovery:status', { status: DiscoveryStatusSchema }),
  e('peer:discovered', { peerId: z.string(), source: z.enum(['dht', 'routing-table', 'query']) }),
  e('peer:verified', { peerId: z.string(), reachable: z.boolean(), latencyMs: z.number().optional(), address: z.string().optional(), error: z.string().optional() }),
  e('routing:add', { peerId: z.string(), size: z.number().int() }),
  e('routing:remove', { peerId: z.string(), size: z.number().int() }),
  /** Solution #3.8 (metrics): bootstrap walk completion. */
  e('dht:walk', { durationMs: z.number(), routingTableSize: z.number().int() }),
  e('dht:test', { success: z.boolean(), latencyMs: z.number(), error: z.string().optional() }),
  e('connection:open', { peerId: z.string(), remoteAddr: z.string(), direction: z.enum(['inbound', 'outbound']) }),
  e('connection:close', { peerId: z.string(), remoteAddr: z.string() }),
  e('dial:failed', { peerId: z.string(), category: ErrorCategorySchema, detail: z.string() }),
  /**
   * What a bootstrap said about itself and the network when this node connected: its agent, whether it serves this
   * node's DHT protocol, how many other DHT peers it reports (chiral's hello; null when it does not say) and how
   * many peers it returned for a FIND_NODE of this node (null when not asked). The evidence behind "you might be
   * first" and behind the diagnosis of peers that all see nothing.
   */
  e('bootstrap:identified', {
    bootstrap: z.string(), agentVersion: z.string().nullable(), speaksDht: z.boolean().nullable(),
    otherPeers: z.number().int().nullable(), closerPeers: z.number().int().nullable()
  }),
  e('bootstrap:busy', { peerId: z.string(), connectedPeers: z.number().int(), maxPeers: z.number().int() }),
  e('file:shared', { cid: z.string(), name: z.string(), size: z.number().int() }),
  e('file:provided', { cid: z.string(), ok: z.boolean(), error: z.string().optional() }),
  e('file:found', { cid: z.string(), providers: z.array(z.string()) }),
  e('file:downloaded', { cid: z.string(), provider: z.string().optional(), success: z.boolean(), hashVerified: z.boolean(), error: z.string().optional() }),
  /** Plan Solution #4: the bootstrap's supervisor (process and docker modes), reported under the bootstrap's name. */
  e('supervisor:check', { ok: z.boolean(), failed: z.array(z.string()), latencyMs: z.number().nullable() }),
  e('supervisor:restart', { reason: z.string(), restartsInWindow: z.number().int(), ok: z.boolean(), durationMs: z.number(), error: z.string().optional() }),
  e('supervisor:alert', { restartsInWindow: z.number().int(), windowMs: z.number(), message: z.string() }),
  e('supervisor:recovered', { downtimeMs: z.number(), automatic: z.boolean(), restarts: z.number().int(), reason: z.string() }),
  /**
   * The runner's black-box look at an external node (one chiral-sim did not build): a libp2p ping, then identify.
   * `speaksDht` says whether it announces the scenario's DHT protocol (cause 7 when it does not).
   */
  e('external:probe', {
    ok: z.boolean(), latencyMs: z.number().nullable(), detail: z.string(),
    agentVersion: z.string().optional(), protocols: z.array(z.string()), dhtProtocol: z.string(), speaksDht: z.boolean().nullable()
  }),
  e('log', { level: z.enum(['info', 'warn', 'error']), message: z.string() })
])

/** An event as it leaves a node: numbered per node so a stream reader can resume after a reconnect. */
export const NodeEventSchema = z.intersection(
  z.object({ seq: z.number().int().min(0), time: z.number(), node: z.string() }),
  NodeEventBodySchema
)

export type NodeEventBody = z.infer<typeof NodeEventBodySchema>
export type NodeEvent = z.infer<typeof NodeEventSchema>
export type NodeEventType = NodeEventBody['type']
export type NodeEventOf<T extends NodeEventType> = Extract<NodeEvent, { type: T }>
export type NodeEventListener = (event: NodeEvent) => void

/**
 * How many events a node keeps for replay. A node lives for weeks; its log must not grow with it. The harness reads
 * events as they happen (a stream replays only what a reconnect missed), so the last 10 000 — hours of a busy
 * bootstrap, a whole scenario of any node — are what replay needs. Older ones are dropped, counted, and reported to a
 * reader that asks for them (`first`, `dropped`).
 */
export const EVENT_LOG_RETENTION = 10_000

/**
 * A per-node event log: numbers and stamps events, fans them out, and keeps the last `retention` of them so that a
 * late subscriber (the control channel's stream, a reconnecting runner) can replay from a sequence number.
 */
export class EventLog {
  readonly #node: string
  /** A ring: event `seq` lives at `seq % retention` while `seq >= first`. */
  readonly #ring: Array<NodeEvent | undefined>
  readonly #retention: number
  #next = 0
  readonly #counts = new Map<NodeEventType, number>()
  readonly #listeners = new Set<NodeEventListener>()
  readonly #now: () => number

  constructor (node: string, now: () => number = Date.now, options: { retention?: number } = {}) {
    this.#node = node
    this.#now = now
    this.#retention = Math.max(1, Math.floor(options.retention ?? EVENT_LOG_RETENTION))
    this.#ring = new Array<NodeEvent | undefined>(this.#retention)
  }

  emit (body: NodeEventBody): NodeEvent {
    const event = { seq: this.#next, time: this.#now(), node: this.#node, ...body } as NodeEvent
    this.#ring[this.#next % this.#retention] = event
    this.#next++
    this.#counts.set(body.type, (this.#counts.get(body.type) ?? 0) + 1)
    for (const listener of this.#listeners) {
      try { listener(event) } catch { /* a faulty subscriber must not break the node */ }
    }
    return event
  }

  /** The seq the next event gets. */
  get next (): number {
    return this.#next
  }

  /** The oldest seq still kept; everything below it was dropped. */
  get first (): number {
    return Math.max(0, this.#next - this.#retention)
  }

  /** Events dropped so far (they are seqs 0 … dropped-1). */
  get dropped (): number {
    return this.first
  }

  get retention (): number {
    return this.#retention
  }

  /** The event numbered `seq`, if it is still kept. */
  get (seq: number): NodeEvent | undefined {
    return seq >= this.first && seq < this.#next ? this.#ring[seq % this.#retention] : undefined
  }

  /** Kept events with `seq >= from` (a copy; a reader that can be slow should walk `get(seq)` instead). */
  since (from = 0): NodeEvent[] {
    const out: NodeEvent[] = []
    for (let seq = Math.max(from, this.first); seq < this.#next; seq++) out.push(this.#ring[seq % this.#retention]!)
    return out
  }

  subscribe (listener: NodeEventListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Whether an event of this type was ever emitted, dropped ones included. */
  has (type: NodeEventType): boolean {
    return this.count(type) > 0
  }

  /** How many events of this type were ever emitted, dropped ones included. */
  count (type: NodeEventType): number {
    return this.#counts.get(type) ?? 0
  }
}
