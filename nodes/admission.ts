import type { Connection, IdentifyResult, Stream } from '@libp2p/interface'
import { askHello, BusyError, type HelloAnswer } from './hello.ts'
import type { NodeContext } from './context.ts'
import { findNodeVia } from './find-node.ts'
import { sleep } from './util.ts'

/**
 * What happens between a completed handshake and "connected": the bootstrap must serve this node's DHT protocol
 * and must keep the connection once it knows who we are. A bootstrap with an admission policy (agent version, as
 * rust-libp2p apps write them on identify's event) closes the connection right after identify; before this check
 * that showed up as success, as a later red health, or as "refused", depending on timing.
 *
 * An idle-closing bootstrap (rust-libp2p ≤ 0.54: idle timeout 0) also closes right after identify, but only a
 * connection without open streams: so the check holds a DHT stream open while it waits, and a close in that window
 * is the bootstrap's decision about us, not idleness.
 */

/**
 * How long after identify (and a FIND_NODE answer) a bootstrap has to drop us before we call the connection
 * admitted: two handshake times, at least 50 ms and at most ADMISSION_GRACE_MS. Real milliseconds, not plan time:
 * it bounds the bootstrap's reaction to identify (one round trip and its own processing, which grow with the
 * handshake's on a loaded machine or a distant bootstrap), and it must not eat a compressed connect budget (Test 1's
 * 5 s is 500 ms at timeScale 0.1). Only bootstraps that do not speak chiral's hello wait: chiral's own has no
 * admission policy.
 */
export const ADMISSION_GRACE_MS = 300
const ADMISSION_GRACE_MIN_MS = 50

export function admissionGraceMs (handshakeMs: number): number {
  return Math.min(ADMISSION_GRACE_MS, Math.max(ADMISSION_GRACE_MIN_MS, 2 * handshakeMs))
}

export class ProtocolMismatchError extends Error {
  override readonly name = 'UnsupportedProtocolError'
}

export class RejectedAfterIdentifyError extends Error {
  override readonly name = 'RejectedAfterIdentifyError'
  readonly code = 'rejected'
  /**
   * Whether our DHT stream was open (negotiated) when the bootstrap closed the connection. Only then is the close
   * a decision about us: an idle-closing bootstrap (rust-libp2p ≤ 0.54, idle timeout 0) also closes a connection
   * whose identify ended before our stream reached it, and may close one at the very start, before any stream
   * (its identify's first request waits on a zero-length timer that can lose to the idle check).
   */
  readonly streamWasOpen: boolean
  constructor (message: string, evidence: { streamWasOpen: boolean }) {
    super(message)
    this.streamWasOpen = evidence.streamWasOpen
  }
}

/** The connect budget ran out before the bootstrap could judge us: a timeout, whatever the bootstrap would decide. */
export class AdmissionUndecidedError extends Error {
  override readonly name = 'TimeoutError'
}

export interface Admission {
  hello: HelloAnswer | null
  agentVersion: string | null
  /** Peers the bootstrap returned for a FIND_NODE of this node; null when it was not asked (chiral's hello answered). */
  closerPeers: number | null
}

/**
 * Throws a categorizable error (protocol, busy, rejected) or says what the bootstrap told us. `deadline` is when the
 * attempt's own timeout fires: the grace never runs into it. `early` is our DHT stream if it was opened as the
 * connection appeared (early-streams.ts); otherwise it is opened now.
 */
export async function admit (
  ctx: NodeContext, connection: Connection, signal: AbortSignal, deadline: number, handshakeMs: number, early?: Promise<Stream>
): Promise<Admission> {
  const started = Date.now()
  let closedAt: number | undefined
  const onClose = (): void => { closedAt ??= Date.now() }
  connection.addEventListener('close', onClose, { once: true })
  const lost = (): boolean => closedAt != null || connection.status !== 'open'
  const rejected = (what: string): RejectedAfterIdentifyError => new RejectedAfterIdentifyError(
    `the bootstrap closed the connection ${what} (${(closedAt ?? Date.now()) - started} ms after the handshake): agent rejected? ` +
    `(this node identifies as "${agentOf(ctx)}")`, { streamWasOpen: held != null })
  /** Whatever failed on a connection the bootstrap has closed failed because it closed it. */
  const guarded = async <T>(work: Promise<T>, what: string): Promise<T> => await work.catch((err: unknown) => {
    if (!signal.aborted && (lost() || connectionGone(err))) throw rejected(what)
    throw err
  })
  const protocol = ctx.config.dht.protocol
  // Opened before identify ends: an idle-closing bootstrap keeps a connection that carries a stream, so a close
  // while it is open is the bootstrap's decision about us. Its negotiation also asks whether it serves our DHT.
  const holding = early ?? connection.newStream(protocol, { signal })
  holding.catch(() => {})
  // Asked alongside identify: one round trip less in a connect whose budget the plan compresses with timeScale.
  const helloing = askHello(connection, signal)
  helloing.catch(() => {})
  let held: Awaited<typeof holding> | undefined
  try {
    // A connection libp2p already had (the monitor's, a DHT query's) may have survived its admission long ago.
    const survived = started - connection.timeline.open >= ADMISSION_GRACE_MS
    const identified = await identifiedOver(ctx, connection, signal)
    const identifiedAt = survived ? connection.timeline.open : Date.now()
    const mismatch = (): ProtocolMismatchError => new ProtocolMismatchError(`the bootstrap does not serve ${protocol}: it announces ${identified == null ? 'nothing through identify' : [...identified.protocols].sort().join(', ') || 'no protocols'} (another DHT protocol, or not a DHT server)`)
    if (identified == null && lost()) {
      // An idle-closing bootstrap that does not serve our DHT has nothing to keep the connection open for: its
      // refusal of our DHT stream, not the close, is the finding.
      const refused = await holding.then(() => false, (err: unknown) => (err as Error)?.name === 'UnsupportedProtocolError')
      throw refused ? mismatch() : rejected('during identify')
    }
    if (identified != null && !identified.protocols.includes(protocol)) throw mismatch()
    held = await guarded(holding, 'after identify').catch((err: unknown) => {
      if ((err as Error)?.name === 'UnsupportedProtocolError') throw mismatch()
      throw err
    })
    const hello = await guarded(helloing, 'after identify')
    if (hello?.status === 'busy') throw new BusyError(`bootstrap has ${hello.peers} peers (max ${hello.maxPeers})`)
    let closerPeers: number | null = null
    if (hello == null) {
      // Evidence, not a condition of success: it must not cost the attempt its deadline.
      const answer = await findNodeVia(ctx, connection.remotePeer, ctx.libp2p.peerId, AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, deadline - DEADLINE_MARGIN_MS - Date.now()))]))
        .catch((err: unknown) => { if (signal.aborted) throw err; return { error: 'no answer before the attempt\'s deadline' } })
      if ('closer' in answer) closerPeers = answer.closer.length
      else ctx.log.emit({ type: 'log', level: 'warn', message: `the bootstrap did not answer FIND_NODE: ${answer.error}` })
      // The bootstrap judges us by our answer to its identify request, which a loaded client may send well after
      // it had the bootstrap's own answer: the grace runs from whichever came later.
      let answeredAt = survived ? undefined : await ourIdentifyAnswer(ctx, connection, Math.min(deadline - DEADLINE_MARGIN_MS, Date.now() + ANSWER_WAIT_MS), lost, signal)
      if (!survived && answeredAt == null && !lost() && identifyAnswers.get(ctx.libp2p)?.asked.has(connection) === true) {
        // Asked and still answering (a loaded client): the bootstrap has not judged us yet, and "admitted" would be
        // a guess (a refused agent read as connected). Its answer is waited for until the budget runs out.
        answeredAt = await ourIdentifyAnswer(ctx, connection, deadline - DEADLINE_MARGIN_MS, lost, signal)
        if (answeredAt == null && !lost()) {
          throw new AdmissionUndecidedError(`our answer to the bootstrap's identify had not gone out when the connect budget ran out (${Date.now() - started} ms after the handshake): the bootstrap had not judged this node yet`)
        }
      }
      const graceEnd = Math.min(Math.max(identifiedAt, answeredAt ?? 0) + admissionGraceMs(handshakeMs), deadline - DEADLINE_MARGIN_MS)
      if (!lost() && graceEnd > Date.now()) await waitForClose(connection, graceEnd - Date.now(), signal)
      if (lost()) throw rejected('after identify, although a DHT stream was open')
    }
    ctx.log.emit({
      type: 'bootstrap:identified',
      bootstrap: connection.remotePeer.toString(),
      agentVersion: identified?.agentVersion ?? null,
      speaksDht: true,
      otherPeers: hello == null ? null : otherPeersOf(hello),
      closerPeers
    })
    return { hello, agentVersion: identified?.agentVersion ?? null, closerPeers }
  } finally {
    connection.removeEventListener('close', onClose)
    const stream = held ?? await holding.catch(() => undefined)
    await stream?.close().catch(() => { stream.abort(new Error('admission check done')) })
  }
}

/** Room left before the attempt's deadline, so that a grace cut short still reports the admission, not a timeout. */
const DEADLINE_MARGIN_MS = 100

/** Errors of a stream or connection that the remote ended. */
function connectionGone (err: unknown): boolean {
  const name = (err as Error)?.name ?? ''
  return ['ConnectionClosedError', 'ConnectionClosingError', 'UnexpectedEOFError', 'StreamResetError', 'StreamClosedError', 'MuxerClosedError'].includes(name)
}

type Identified = { agentVersion?: string, protocols: string[] }

/** Identify's answer per connection, kept from the node's start so that none is missed by a late listener. */
const identifiedConnections = new WeakMap<object, WeakMap<Connection, Identified>>()

/** Call once at start, before any connection: from then on admit() knows each connection's identify answer. */
export function trackIdentify (libp2p: NodeContext['libp2p']): void {
  const seen = new WeakMap<Connection, Identified>()
  identifiedConnections.set(libp2p, seen)
  libp2p.addEventListener('peer:identify', (ev) => {
    const { connection, agentVersion, protocols } = ev.detail
    seen.set(connection, { ...(agentVersion != null ? { agentVersion } : {}), protocols })
  })
  // When this node answered the remote's identify request on each connection: libp2p has no event for it. The
  // identify service registers its (instance-bound) handler when libp2p starts, so wrapping it before then sees
  // every answer; a libp2p without that shape is left alone and the grace runs from our own identify.
  const service = (libp2p.services as { identify?: { handleProtocol?: (stream: Stream, connection: Connection) => Promise<void> } }).identify
  const handle = service?.handleProtocol
  if (service == null || typeof handle !== 'function') return
  const answers: IdentifyAnswers = { asked: new WeakSet(), at: new WeakMap(), events: new EventTarget() }
  identifyAnswers.set(libp2p, answers)
  service.handleProtocol = async (stream, connection) => {
    answers.asked.add(connection)
    try {
      await handle.call(service, stream, connection)
    } finally {
      answers.at.set(connection, Date.now())
      answers.events.dispatchEvent(new Event('answered'))
    }
  }
}

/** The connections whose remote asked our identify, when this node answered on each, and an event each time it does. */
interface IdentifyAnswers { asked: WeakSet<Connection>, at: WeakMap<Connection, number>, events: EventTarget }
const identifyAnswers = new WeakMap<object, IdentifyAnswers>()

/** How long to wait for the remote to ask for our identify before the grace runs from its own answer alone. */
const ANSWER_WAIT_MS = 2_000

/**
 * When this node's answer to the remote's identify request on `connection` went out, waiting for it until `until`;
 * undefined when it did not go out by then (a remote that does not ask cannot judge us by our agent).
 */
async function ourIdentifyAnswer (ctx: NodeContext, connection: Connection, until: number, lost: () => boolean, signal: AbortSignal): Promise<number | undefined> {
  const answers = identifyAnswers.get(ctx.libp2p)
  if (answers == null || answers.at.has(connection) || lost() || Date.now() >= until) return answers?.at.get(connection)
  const done = new AbortController()
  const check = (): void => { if (answers.at.has(connection)) done.abort() }
  const closed = (): void => { done.abort() }
  answers.events.addEventListener('answered', check)
  connection.addEventListener('close', closed)
  try {
    // Ends at the answer, the connection's close, the deadline or the caller's abort, whichever comes first.
    await sleep(until - Date.now(), AbortSignal.any([signal, done.signal])).catch(err => { if (signal.aborted) throw err })
  } finally {
    answers.events.removeEventListener('answered', check)
    connection.removeEventListener('close', closed)
  }
  return answers.at.get(connection)
}

/**
 * libp2p identifies every new connection by itself (and a second identify stream at once is refused: identify
 * accepts one inbound stream per connection), so wait for that one. Undefined when the remote has no identify or
 * the connection closed first.
 */
async function identifiedOver (ctx: NodeContext, connection: Connection, signal: AbortSignal): Promise<Identified | undefined> {
  const seen = identifiedConnections.get(ctx.libp2p)
  const known = seen?.get(connection)
  if (known != null) return known
  // Not tracked (a node built without trackIdentify): what identify stored is the best there is.
  if (seen == null) return await fromPeerStore(ctx, connection)
  // Closed already (a loaded client comes late): no identify will come, and the close event that would end the
  // wait has fired. What another connection left in the peer store says nothing about this one.
  if (connection.status !== 'open') return undefined
  const gone = new AbortController()
  const onClose = (): void => { gone.abort() }
  let onIdentify: ((ev: CustomEvent<IdentifyResult>) => void) | undefined
  connection.addEventListener('close', onClose, { once: true })
  try {
    await new Promise<void>((resolve, reject) => {
      onIdentify = (ev) => { if (ev.detail.connection === connection) resolve() }
      ctx.libp2p.addEventListener('peer:identify', onIdentify)
      const stop = AbortSignal.any([signal, gone.signal, AbortSignal.timeout(IDENTIFY_WAIT_MS)])
      stop.addEventListener('abort', () => { if (signal.aborted) reject(signal.reason as Error); else resolve() }, { once: true })
    })
    return seen.get(connection) ?? (gone.signal.aborted ? undefined : await fromPeerStore(ctx, connection))
  } finally {
    connection.removeEventListener('close', onClose)
    if (onIdentify != null) ctx.libp2p.removeEventListener('peer:identify', onIdentify)
  }
}

/** What identify recorded about the remote of `connection`, if anything. */
async function fromPeerStore (ctx: NodeContext, connection: Connection): Promise<Identified | undefined> {
  const known = await ctx.libp2p.peerStore.get(connection.remotePeer).catch(() => undefined)
  if (known == null || known.protocols.length === 0) return undefined
  const agent = known.metadata.get('AgentVersion')
  return { ...(agent != null ? { agentVersion: new TextDecoder().decode(agent) } : {}), protocols: known.protocols }
}

/** How long to wait for identify before judging by the peer store (identify's own timeout is longer). */
const IDENTIFY_WAIT_MS = 5_000

/** Other DHT peers the bootstrap has, per its hello answer (older bootstraps only count connections). */
export function otherPeersOf (hello: HelloAnswer): number {
  return Math.max(0, (hello.others ?? hello.peers - 1))
}

function agentOf (ctx: NodeContext): string {
  return ctx.config.agentVersion ?? (ctx.libp2p as unknown as { components?: { nodeInfo?: { userAgent?: string } } }).components?.nodeInfo?.userAgent ?? 'js-libp2p'
}

async function waitForClose (connection: Connection, ms: number, signal: AbortSignal): Promise<void> {
  const closed = new AbortController()
  const onClose = (): void => { closed.abort() }
  connection.addEventListener('close', onClose, { once: true })
  try {
    await sleep(ms, AbortSignal.any([signal, closed.signal])).catch(err => { if (signal.aborted) throw err })
  } finally {
    connection.removeEventListener('close', onClose)
  }
}
