import { EventTypes, MessageType } from '@libp2p/kad-dht'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { dhtOf, routingTablePeers, type NodeContext } from './context.ts'
import { RECORD_NAMESPACE } from './libp2p.ts'
import { deadline, describeError } from './util.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export interface DhtTestResult { success: boolean, latencyMs: number, error?: string }

/**
 * Plan Step 4: publish `discovery-test-{peerId}` and read it back — from another peer.
 *
 * Invariant: success means another peer answered a DHT query with this write. kad-dht's put stores the record in the
 * node's own datastore before sending it anywhere, and its get yields that local copy first, so the first value a
 * get yields proves nothing about the network: only values and provider records in other peers' answers count.
 *
 * Two records, as the go and rust peers write them, since no one kind is accepted everywhere: the value record
 * (a chiral or rust-libp2p node stores it; a stock js-libp2p or go-libp2p DHT refuses a namespace outside its
 * validators) and, only when no peer gave the value back, a provider record for the key's hash, which every
 * Kademlia node stores. kad-dht's put never throws (it yields QUERY_ERROR events), so the writes are counted from
 * the PUT_VALUE answers. Both walks share the plan's one DHT deadline.
 */
export async function testPeerDiscovery (ctx: NodeContext, testContent: string, outer?: AbortSignal): Promise<DhtTestResult> {
  const started = performance.now()
  const finish = (success: boolean, error?: string): DhtTestResult => {
    const result = { success, latencyMs: Math.round(performance.now() - started), ...(error != null ? { error } : {}) }
    ctx.metrics.recordQuery(success)
    if (success) ctx.metrics.lastSuccessfulDhtRead = Date.now()
    ctx.log.emit({ type: 'dht:test', ...result })
    return result
  }
  if (routingTablePeers(ctx).length === 0) {
    // kad-dht would wait for a first peer until the deadline; with nobody to store the record on, the answer is now.
    return { ...finish(false, 'the DHT routing table is empty: no peer to store the test record on'), latencyMs: 0 }
  }
  const self = ctx.libp2p.peerId
  const key = encoder.encode(`/${RECORD_NAMESPACE}/${testContent}-${self.toString()}`)
  const value = String(Date.now())
  const parent = outer != null ? AbortSignal.any([ctx.stopSignal, outer]) : ctx.stopSignal
  const { signal: budget, timedOut } = deadline(ctx.timing.dhtQueryTimeoutMs, parent)
  // Leaving a walk at the first answer that settles the test must end the walk too: its queries and dials would
  // otherwise run on until the deadline, in the background of whatever the node does next.
  const done = new AbortController()
  const signal = AbortSignal.any([budget, done.signal])
  const dht = dhtOf(ctx)
  let stored = 0
  let provided = 0
  let lastError: string | undefined
  try {
    for await (const ev of dht.put(key, encoder.encode(value), { signal })) {
      if (ev.type === EventTypes.PEER_RESPONSE && ev.messageType === MessageType.PUT_VALUE) stored++
      if (ev.type === EventTypes.QUERY_ERROR) lastError = describeError(ev.error)
    }
    if (stored > 0) {
      ctx.metrics.lastSuccessfulDhtWrite = Date.now()
      // get yields one value at the end of its walk, the best by the selector, which may be the node's own copy: the
      // other peers' answers are read from their GET_VALUE responses, and the first one that has the record ends it.
      for await (const ev of dht.get(key, { signal })) {
        if (ev.type === EventTypes.PEER_RESPONSE && ev.messageType === MessageType.GET_VALUE && !ev.from.equals(self) &&
          ev.record != null && decoder.decode(ev.record.value) === value) return finish(true)
      }
    }
    // No peer gave the value back: the provider record, which no Kademlia node refuses.
    const cid = CID.createV1(raw.code, await sha256.digest(key))
    for await (const ev of dht.provide(cid, { signal })) {
      if (ev.type === EventTypes.PEER_RESPONSE && ev.messageType === MessageType.ADD_PROVIDER) provided++
      if (ev.type === EventTypes.QUERY_ERROR) lastError = describeError(ev.error)
    }
    // kad-dht's findProviders leaves out providers it already knows (itself among them), so the answers are read
    // from the GET_PROVIDERS responses themselves.
    for await (const ev of dht.findProviders(cid, { signal })) {
      if (ev.type === EventTypes.PEER_RESPONSE && ev.messageType === MessageType.GET_PROVIDERS && !ev.from.equals(self) &&
        ev.providers.some(p => p.id.equals(self))) {
        ctx.metrics.lastSuccessfulDhtWrite = Date.now()
        return finish(true)
      }
    }
    return finish(false, `record not read back from any other peer (stored on ${stored} peers, provider record sent to ${provided}${lastError != null ? `; last error: ${lastError}` : ''})`)
  } catch (err) {
    if (timedOut()) {
      return finish(false, `DHT test timed out after ${ctx.timing.dhtQueryTimeoutMs} ms (stored on ${stored} peers, provider record sent to ${provided}; not read back from any other peer)`)
    }
    return finish(false, describeError(err))
  } finally {
    done.abort()
  }
}
