import type { PeerId } from '@libp2p/interface'
import { EventTypes } from '@libp2p/kad-dht'
import { dhtOf, type NodeContext } from './context.ts'
import { describeError } from './errors.ts'

/** kad-dht's network layer: one request to one peer, no walk and no local shortcut. Not in its public types. */
interface KadNetwork {
  sendRequest(to: PeerId, msg: { type: string, key: Uint8Array }, options: { signal: AbortSignal }): AsyncIterable<{ type: EventTypes, closer?: Array<{ id: PeerId }>, error?: unknown }>
}

/**
 * One FIND_NODE for `target`, sent to `to` alone: the peers its answer carries. This is what a bootstrap tells a
 * newcomer; one that filters what it returns (routable addresses only, on loopback) answers with nobody while
 * others are online.
 */
export async function findNodeVia (ctx: NodeContext, to: PeerId, target: PeerId, signal: AbortSignal): Promise<{ closer: string[] } | { error: string }> {
  const network = (dhtOf(ctx) as unknown as { network?: KadNetwork }).network
  if (network?.sendRequest == null) return { error: 'this kad-dht version has no request API to ask one peer' }
  try {
    for await (const ev of network.sendRequest(to, { type: 'FIND_NODE', key: target.toMultihash().bytes }, { signal })) {
      if (ev.type === EventTypes.PEER_RESPONSE) return { closer: (ev.closer ?? []).map(p => p.id.toString()) }
      if (ev.type === EventTypes.QUERY_ERROR) return { error: describeError(ev.error) }
    }
    return { error: 'no answer' }
  } catch (err) {
    if (signal.aborted) throw err
    return { error: describeError(err) }
  }
}
