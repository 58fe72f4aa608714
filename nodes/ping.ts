import type { PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { NodeContext } from './context.ts'
import { openOnArrival } from './early-streams.ts'
import { deadline } from './util.ts'

/**
 * The one way this node pings another for its own checks (health, reachability). The ping spec lets the
 * listening side refuse a third concurrent ping stream from one peer (js-libp2p's default accepts 2 inbound), and
 * kad-dht's admission ping already uses one. So our own pings to a peer go one at a time, and a ping whose stream
 * the remote closed or reset is tried again: that is a busy stream slot, not an unreachable node. A ping whose
 * connection went away under it is tried again on a fresh connection: bootstraps that close idle connections
 * (rust-libp2p ≤ 0.54 closes right after identify) are healthy when they answer a ping on a new connection. A
 * stalled ping (seen on the memory transport) gets one more try over a fresh connection when `freshAfterStall`
 * allows it.
 */
const queues = new WeakMap<NodeContext, Map<string, Promise<unknown>>>()

export async function pingPeer (ctx: NodeContext, target: PeerId | Multiaddr, key: string, outer: AbortSignal, opts: { freshAfterStall?: boolean, holdProtocol?: string } = {}): Promise<number> {
  let perNode = queues.get(ctx)
  if (perNode == null) {
    perNode = new Map()
    queues.set(ctx, perNode)
  }
  const previous = perNode.get(key) ?? Promise.resolve()
  const run = previous.catch(() => {}).then(async () => await pingWithRetries(ctx, target, outer, opts.freshAfterStall ?? false, opts.holdProtocol))
  const settled = run.catch(() => {})
  perNode.set(key, settled)
  void settled.then(() => { if (perNode.get(key) === settled) perNode.delete(key) })
  return await run
}

const ATTEMPTS = 3
/**
 * Fresh connections a ping may take when each is closed under it. rust-libp2p 0.54 with idle timeout 0 can close a
 * connection at its very start, before any stream of ours arrives (about one in six): three in a row made a healthy
 * bootstrap red about once in 200 checks; five in a row is a bootstrap that closes every connection.
 */
const LOST_CONNECTIONS = 5

async function pingWithRetries (ctx: NodeContext, target: PeerId | Multiaddr, outer: AbortSignal, freshAfterStall: boolean, holdProtocol: string | undefined): Promise<number> {
  let lastError: unknown
  let connectionsLost = 0
  // Lost connections have their own budget: they are the remote's idleness, not a refused or stalled ping.
  for (let attempt = 0; attempt - connectionsLost < ATTEMPTS && connectionsLost < LOST_CONNECTIONS; attempt++) {
    outer.throwIfAborted()
    const { signal, timedOut } = deadline(ctx.timing.healthPingTimeoutMs, outer)
    // After a lost connection, the new one carries a stream of `holdProtocol` while the ping runs: rust-libp2p's
    // ping streams do not keep a connection alive, so an idle timeout of 0 closes it right after identify, ping
    // in flight or not; an open DHT stream does keep it.
    // The fresh connection is dialled here, not inside the ping: a dial that fails (refused, unreachable, timed out)
    // is the answer, a bootstrap that went away, and not one more connection closed under a ping.
    // Any new connection the ping makes carries a `holdProtocol` stream from its first moment (early-streams.ts).
    const early = holdProtocol != null ? openOnArrival(ctx, targetOf(target), holdProtocol, signal) : undefined
    let held: Stream | undefined
    try {
      if (connectionsLost > 0) {
        const connection = await ctx.libp2p.dial(target, { signal })
        held = holdProtocol == null ? undefined : await (early?.take(connection) ?? holdStream(ctx, target, holdProtocol, signal)).catch(() => undefined)
      }
    } catch (err) {
      early?.stop()
      throw err
    }
    try {
      return Math.round(await hedgedPing(ctx, target, signal, hedgeAfterMs(ctx.timing.healthPingTimeoutMs)) * 100) / 100
    } catch (err) {
      lastError = err
      if (outer.aborted) throw err
      if (timedOut()) {
        if (!freshAfterStall || attempt > 0) throw err
        await ctx.libp2p.hangUp(target, { signal: outer }).catch(() => {})
        continue
      }
      if (connectionLost(err) || !stillConnected(ctx, target)) {
        connectionsLost++
        // The next ping dials anew; a connection still closing would otherwise be picked again.
        await ctx.libp2p.hangUp(target, { signal: outer }).catch(() => {})
        continue
      }
      if (!refusedStream(err)) throw err
      await new Promise(resolve => setTimeout(resolve, 50 * (attempt + 1)))
    } finally {
      early?.stop()
      await held?.close().catch(() => { held?.abort(new Error('ping done')) })
    }
  }
  if (connectionsLost === LOST_CONNECTIONS) {
    throw new ConnectionLostError(`the remote closed the connection before answering a ping, on ${LOST_CONNECTIONS} fresh connections in a row (it closes connections right after identify?)`, { cause: lastError })
  }
  throw lastError
}

/**
 * When a second ping goes out beside an unanswered first: a quarter of the deadline, at most 250 ms. A ping round
 * trip is milliseconds; an unanswered one is far more often a dropped stream (rust-libp2p's replaced ping stream;
 * a stalled stream on js-libp2p's memory transport, once per verification of a fresh population, which cost the
 * release profile 1 s each at a 1 s hedge) than a slow remote, and a slow one only costs a second stream, since
 * each ping times its own round trip.
 */
export function hedgeAfterMs (deadlineMs: number): number {
  return Math.min(250, Math.floor(deadlineMs / 4))
}

/**
 * A ping with a second one beside it if the first has no answer after `hedgeMs`. rust-libp2p 0.54 serves one
 * inbound ping stream per connection and silently drops the one a newer stream replaced: when kad-dht's admission
 * ping and ours meet on a connection, ours could wait out its whole deadline for an answer that never comes. Each
 * ping measures its own round trip, so whichever answers first reports a true latency (a slow bootstrap's first
 * ping still wins over its hedge). A bootstrap that answers neither fails at the deadline as before, with the
 * first ping's error.
 */
async function hedgedPing (ctx: NodeContext, target: PeerId | Multiaddr, signal: AbortSignal, hedgeMs: number): Promise<number> {
  const done = new AbortController()
  const both = AbortSignal.any([signal, done.signal])
  const ping = async (): Promise<number> => await ctx.libp2p.services.ping.ping(target, { signal: both })
  try {
    return await new Promise<number>((resolve, reject) => {
      let hedge: Promise<number> | undefined
      const timer = setTimeout(() => {
        hedge = ping()
        hedge.then(resolve, () => {})
      }, hedgeMs)
      both.addEventListener('abort', () => { clearTimeout(timer) }, { once: true })
      ping().then(resolve, (err: unknown) => {
        // A first ping that fails (rather than going unanswered) is the finding, for the caller's retries; it also
        // decides when both fail: the hedge only stands in for a dropped stream.
        if (hedge == null) {
          clearTimeout(timer)
          reject(err)
        } else {
          hedge.catch(() => { reject(err) })
        }
      })
    })
  } finally {
    done.abort()
  }
}

function targetOf (target: PeerId | Multiaddr): { peerId?: string, addr?: string } {
  if (!('getComponents' in target)) return { peerId: target.toString() }
  const peerId = target.getComponents().findLast(c => c.name === 'p2p')?.value
  return { ...(peerId != null ? { peerId } : {}), addr: target.toString() }
}

/** A stream of `protocol` on a connection to `target` (dialled if needed), or undefined when none can be had. */
async function holdStream (ctx: NodeContext, target: PeerId | Multiaddr, protocol: string, signal: AbortSignal): Promise<Stream | undefined> {
  try {
    const connection = await ctx.libp2p.dial(target, { signal })
    return await connection.newStream(protocol, { signal })
  } catch {
    return undefined
  }
}

export class ConnectionLostError extends Error {
  override readonly name = 'ConnectionLostError'
}

/** Whether an open connection to the ping's target is left (a stream error on a closed connection is the connection's). */
function stillConnected (ctx: NodeContext, target: PeerId | Multiaddr): boolean {
  const id = 'getComponents' in target ? target.getComponents().findLast(c => c.name === 'p2p')?.value : target.toString()
  // Without a peer ID there is no telling: trust the error.
  if (id == null) return true
  return ctx.libp2p.getConnections().some(c => c.remotePeer.toString() === id && c.status === 'open')
}

/** The connection under the ping ended (the remote closed it, e.g. as idle), as opposed to the ping stream alone. */
function connectionLost (err: unknown): boolean {
  // js-libp2p's ping rejects with the stream's own "close" event when the connection goes away mid-ping.
  if (err instanceof Event) return err.type === 'close'
  const name = (err as Error)?.name ?? ''
  return ['UnexpectedEOFError', 'ConnectionClosedError', 'ConnectionClosingError', 'MuxerClosedError'].includes(name) ||
    /connection (is )?(closed|closing)|unexpected EOF/i.test((err as Error)?.message ?? '')
}

/** The remote ended or refused the ping stream itself, while the connection may be fine. */
function refusedStream (err: unknown): boolean {
  const name = (err as Error)?.name ?? ''
  return ['StreamStateError', 'StreamResetError', 'StreamClosedError', 'TooManyOutboundProtocolStreamsError', 'TooManyInboundProtocolStreamsError', 'StreamAbortedError'].includes(name)
}
