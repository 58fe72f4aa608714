import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { NodeContext } from './context.ts'
import { deadline } from './util.ts'

/**
 * The one way this node pings another for its own checks (health, reachability). The ping spec lets the
 * listening side refuse a third concurrent ping stream from one peer (js-libp2p's default accepts 2 inbound), and
 * kad-dht's admission ping already uses one. So our own pings to a peer go one at a time, and a ping whose stream
 * the remote closed or reset is tried again: that is a busy stream slot, not an unreachable node. A stalled ping
 * (seen on the memory transport) gets one more try over a fresh connection when `freshAfterStall` allows it.
 */
const queues = new WeakMap<NodeContext, Map<string, Promise<unknown>>>()

export async function pingPeer (ctx: NodeContext, target: PeerId | Multiaddr, key: string, outer: AbortSignal, opts: { freshAfterStall?: boolean } = {}): Promise<number> {
  let perNode = queues.get(ctx)
  if (perNode == null) {
    perNode = new Map()
    queues.set(ctx, perNode)
  }
  const previous = perNode.get(key) ?? Promise.resolve()
  const run = previous.catch(() => {}).then(async () => await pingWithRetries(ctx, target, outer, opts.freshAfterStall ?? false))
  const settled = run.catch(() => {})
  perNode.set(key, settled)
  void settled.then(() => { if (perNode.get(key) === settled) perNode.delete(key) })
  return await run
}

async function pingWithRetries (ctx: NodeContext, target: PeerId | Multiaddr, outer: AbortSignal, freshAfterStall: boolean): Promise<number> {
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    outer.throwIfAborted()
    const { signal, timedOut } = deadline(ctx.timing.healthPingTimeoutMs, outer)
    try {
      return Math.round(await ctx.libp2p.services.ping.ping(target, { signal }) * 100) / 100
    } catch (err) {
      lastError = err
      if (outer.aborted) throw err
      if (timedOut()) {
        if (!freshAfterStall || attempt > 0) throw err
        await ctx.libp2p.hangUp(target, { signal: outer }).catch(() => {})
        continue
      }
      if (!refusedStream(err)) throw err
      await new Promise(resolve => setTimeout(resolve, 50 * (attempt + 1)))
    }
  }
  throw lastError
}

/** The remote ended or refused the ping stream itself, while the connection may be fine. */
function refusedStream (err: unknown): boolean {
  const name = (err as Error)?.name ?? ''
  return ['StreamStateError', 'StreamResetError', 'StreamClosedError', 'TooManyOutboundProtocolStreamsError', 'TooManyInboundProtocolStreamsError', 'StreamAbortedError'].includes(name)
}
