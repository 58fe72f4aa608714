import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { categorizeBootstrapError } from './errors.ts'
import { admit, RejectedAfterIdentifyError } from './admission.ts'
import { openOnArrival } from './early-streams.ts'
import { isConnectedTo, type NodeContext } from './context.ts'
import type { CategorizedError, ConnectionAttempt, ConnectResult } from './schemas.ts'
import { extendableDeadline, peerIdOfAddr } from './util.ts'
import { toPlanMs, toRealMs } from './timing.ts'

/**
 * Plan Solution #1: connect to a bootstrap with a deadline, retry a busy one with the longer timeout, and fail over
 * across the bootstrap list, fastest first when latencies are known.
 *
 * The deadline aborts the dial through its AbortSignal rather than racing it, so no connection can appear after a
 * timeout was reported; a connection that completed at the very deadline is closed before the timeout is reported.
 */
export async function connectWithTimeout (
  ctx: NodeContext, request: { bootstrapAddrs?: string[], timeoutMs?: number }, outer?: AbortSignal
): Promise<ConnectResult> {
  const addrs = orderFastestFirst(request.bootstrapAddrs ?? ctx.config.bootstrapAddrs, ctx.bootstrapLatency)
  if (addrs.length === 0) {
    const error: CategorizedError = categorizeBootstrapError(new Error('no bootstrap address configured'))
    ctx.log.emit({ type: 'connect:done', success: false, attempts: 0, error })
    return { success: false, attempts: [], error }
  }
  for (const addr of addrs) {
    const id = peerIdOfAddr(addr)
    if (id != null) ctx.bootstrapPeerIds.add(id)
  }
  const firstTimeout = request.timeoutMs == null
    ? ctx.timing.connectionTimeoutMs
    : toRealMs(request.timeoutMs, ctx.timing.timeScale)

  const attempts: ConnectionAttempt[] = []
  let lastError: CategorizedError | undefined
  for (const addr of addrs) {
    let timeoutMs = firstTimeout
    for (let retry = 0; ; retry++) {
      const attempt = await attemptOnce(ctx, addr, attempts.length + 1, timeoutMs, outer)
      attempts.push(attempt)
      ctx.metrics.recordAttempt(attempt)
      if (attempt.outcome === 'success') {
        ctx.currentBootstrap = addr
        ctx.connectedAt = Date.now()
        ctx.log.emit({ type: 'connect:done', success: true, bootstrap: addr, attempts: attempts.length })
        ctx.log.emit({ type: 'discovery:phase', phase: 'connected', message: `Connected to bootstrap ${addr}` })
        return { success: true, bootstrap: addr, attempts }
      }
      lastError = attempt.error
      if (outer?.aborted === true) break
      // Only "busy" is retried on the same bootstrap (Solution #1.3); anything else moves on to the next one.
      if (attempt.outcome !== 'busy' || retry >= ctx.config.timing.maxRetries) break
      timeoutMs = ctx.timing.busyRetryTimeoutMs
      ctx.log.emit({ type: 'connect:retry', attempt: attempts.length + 1, bootstrap: addr, timeoutMs, reason: 'busy' })
    }
    if (outer?.aborted === true) break
  }
  ctx.log.emit({ type: 'connect:done', success: false, attempts: attempts.length, ...(lastError != null ? { error: lastError } : {}) })
  return { success: false, attempts, ...(lastError != null ? { error: lastError } : {}) }
}

/**
 * Connections an admission check may take when each is closed before our DHT stream is open. A bootstrap that
 * refuses our agent does that on every connection; an idle-closing one only when it wins a race against our stream
 * (about one connection in six against rust-libp2p 0.54, which can close a connection at its very start): five in
 * a row is a rejection, not bad luck.
 */
const ADMISSION_CONNECTIONS = 5

/**
 * Real milliseconds the admission check may take after the handshake, however compressed the connect budget: the
 * bootstrap's identify, its judgement of our answer and our DHT question are network work that timeScale does not
 * make faster (at 0.1 the plan's 5 s budget is 500 ms, and a loaded client was "timeout", or worse, called admitted
 * before the bootstrap had our identify answer). Never past the budget in plan time: at timeScale 1 nothing changes.
 */
const ADMISSION_WORK_MS = 3_000

async function attemptOnce (ctx: NodeContext, addr: string, attempt: number, timeoutMs: number, outer?: AbortSignal): Promise<ConnectionAttempt> {
  const startedAt = Date.now()
  ctx.log.emit({ type: 'connect:attempt', attempt, bootstrap: addr, timeoutMs })
  const limit = extendableDeadline(timeoutMs, AbortSignal.any([ctx.stopSignal, ...(outer != null ? [outer] : [])]))
  const { signal, timedOut } = limit
  const countdown = setInterval(() => {
    ctx.log.emit({ type: 'connect:countdown', bootstrap: addr, remainingMs: Math.max(0, limit.end() - Date.now()) })
  }, ctx.timing.countdownIntervalMs)
  const finish = (outcome: ConnectionAttempt['outcome'], error?: CategorizedError): ConnectionAttempt => {
    clearInterval(countdown)
    limit.dispose()
    const endedAt = Date.now()
    const result: ConnectionAttempt = {
      attempt, bootstrap: addr, timeoutMs, startedAt, endedAt, durationMs: endedAt - startedAt, outcome, ...(error != null ? { error } : {})
    }
    ctx.log.emit({ type: 'connect:result', attempt, bootstrap: addr, outcome, durationMs: result.durationMs, ...(error != null ? { error } : {}) })
    return result
  }
  const early = openOnArrival(ctx, { peerId: peerIdOfAddr(addr), addr }, ctx.config.dht.protocol, signal)
  let closedOnUs: RejectedAfterIdentifyError | undefined
  // A connection the bootstrap closed before dial() returned it (js-libp2p: "Remote closed connection during
  // opening") had its handshake: on a loaded client the bootstrap may have judged our identify answer by then.
  const dial = async (force: boolean): Promise<Connection | undefined> => await ctx.libp2p.dial(multiaddr(addr), { signal, ...(force ? { force } : {}) })
    .catch((err: unknown) => { if (!signal.aborted && (err as Error)?.name === 'ConnectionClosedError') return undefined; throw err })
  try {
    let current = await dial(false)
    const handshakeMs = Date.now() - startedAt
    // Reaching the bootstrap (what Test 2 times) had the compressed budget; what follows is real network work.
    limit.extendTo(Math.min(Date.now() + ADMISSION_WORK_MS, startedAt + toPlanMs(timeoutMs, ctx.timing.timeScale)))
    // A close before our DHT stream was open is what an idle-closing bootstrap does too: only a close with the
    // stream open, or the same on every one of ADMISSION_CONNECTIONS connections, is a rejection.
    for (let tried = 1; ; tried++) {
      try {
        if (current == null) throw new RejectedAfterIdentifyError('the bootstrap closed the connection before our dial returned it', { streamWasOpen: false })
        await admit(ctx, current, signal, limit.end(), handshakeMs, early.take(current))
        break
      } catch (err) {
        if (!(err instanceof RejectedAfterIdentifyError) || signal.aborted || err.streamWasOpen) throw err
        closedOnUs = new RejectedAfterIdentifyError(`${err.message}; on each of ${tried} connections before our DHT stream was open (an idle-closing bootstrap would keep one that carries a stream)`, { streamWasOpen: false })
        if (tried >= ADMISSION_CONNECTIONS) throw closedOnUs
        ctx.log.emit({ type: 'log', level: 'warn', message: `${err.message}; before our DHT stream was open, as an idle-closing bootstrap also does: trying again on a new connection` })
        current = await dial(true)
      }
    }
    // The handshake, not the admission wait: what failover ranks bootstraps by.
    ctx.bootstrapLatency.set(addr, handshakeMs)
    return finish('success')
  } catch (caught) {
    // Connections the bootstrap took and closed on us are what it did, even when the deadline then ran out on the
    // next one: a loaded client's retries must not turn "closed the connection" into "not responding".
    const err = closedOnUs != null && timedOut() ? closedOnUs : caught
    const error = categorizeBootstrapError(err, { timedOut: timedOut() && err === caught, timeoutMs })
    ctx.bootstrapLatency.set(addr, Number.POSITIVE_INFINITY)
    const id = peerIdOfAddr(addr)
    // A connection that raced the deadline must not outlive the reported failure.
    if (id != null && isConnectedTo(ctx, id)) {
      await ctx.libp2p.hangUp(peerIdFromString(id)).catch(() => {})
    }
    return finish(error.category, error)
  } finally {
    early.stop()
  }
}

/**
 * Fastest known first, then the untried ones in configured order, then the ones that last failed (their latency
 * is recorded as Infinity). The sort is stable, so equal latencies keep the configured order.
 */
export function orderFastestFirst (addrs: string[], latency: ReadonlyMap<string, number>): string[] {
  const rank = (a: string): number => latency.get(a) ?? Number.MAX_SAFE_INTEGER
  return [...addrs].sort((a, b) => rank(a) - rank(b))
}
