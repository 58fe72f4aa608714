import { EventTypes } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { CID } from 'multiformats/cid'
import { categorizeBootstrapError } from './errors.ts'
import { dhtOf, isConnectedTo, routingTablePeers, type NodeContext } from './context.ts'
import type { DiscoveryStatus } from './schemas.ts'
import type { NodeEventType } from './events.ts'
import { deadline, describeError } from './util.ts'
import { multiaddr } from '@multiformats/multiaddr'
import { otherPeersOf } from './admission.ts'
import { askHello } from './hello.ts'
import { findNodeVia } from './find-node.ts'
import { pingPeer } from './ping.ts'
import { testPeerDiscovery } from './dht-read-write.ts'
import { dialProgress } from './dial-progress.ts'
import { isStaleDial } from './discovery-verdict.ts'


function linked (ctx: NodeContext, outer?: AbortSignal): AbortSignal {
  return AbortSignal.any([ctx.stopSignal, ...(outer != null ? [outer] : [])])
}

/** Routing table entries that are not bootstraps: the plan's "Routing table: N peers". */
export function routingTableSize (ctx: NodeContext): { size: number, peers: number } {
  const all = routingTablePeers(ctx)
  return { size: all.length, peers: all.filter(p => !ctx.bootstrapPeerIds.has(p)).length }
}

export function listDiscoveredPeerIds (ctx: NodeContext): string[] {
  return [...ctx.discovered.keys()].filter(p => !ctx.bootstrapPeerIds.has(p) && p !== ctx.libp2p.peerId.toString())
}

/** Plan command `verify_peer_reachable`: dial the peer (through the DHT if its address is unknown) and ping it. */
export async function verifyPeerReachable (ctx: NodeContext, peerId: string, outer?: AbortSignal, fresh = false): Promise<{ reachable: boolean, address?: string, latencyMs?: number, error?: string }> {
  const { signal, timedOut } = deadline(ctx.timing.peerDialTimeoutMs, linked(ctx, outer))
  const id = peerIdFromString(peerId)
  // Behind fault proxies the peer is its route; its stored addresses are not: identify overwrites them with the real
  // ones (which the gater denies) before #keepRoutes puts the route back, and a dial by ID in between finds nothing.
  const route = ctx.config.network.routes.find(r => r.peerId === peerId)?.addrs.map(a => multiaddr(a))
  const known = route != null || await ctx.libp2p.peerStore.get(id).then(p => p.addresses.length > 0, () => false)
  const progress = dialProgress(known)
  try {
    const connection = await ctx.libp2p.dial(route ?? id, { signal, force: fresh, onProgress: progress.onProgress })
    // A ping that has to dial again dials the route too (the address this connection went to).
    const latencyMs = await pingPeer(ctx, route != null ? connection.remoteAddr : connection.remotePeer, peerId, signal, { freshAfterStall: true }).catch(() => undefined)
    // Reachable but not answering ping on the standard protocol: kad-dht will not admit it (cause 5).
    if (latencyMs == null) ctx.pingFailures.add(peerId)
    const result = { reachable: true, address: connection.remoteAddr.toString(), ...(latencyMs != null ? { latencyMs } : {}) }
    // A probe's own connection would otherwise make the two peers look connected afterwards.
    if (fresh) await connection.close().catch(() => {})
    ctx.log.emit({ type: 'peer:verified', peerId, ...result })
    return result
  } catch (err) {
    const category = categorizeBootstrapError(err, { timedOut: timedOut() })
    if (timedOut()) category.detail += ` (${progress.step() ?? 'before libp2p started the dial'})`
    ctx.dialFailures.push({ peerId, category: category.category, detail: category.detail, at: Date.now() })
    ctx.log.emit({ type: 'dial:failed', peerId, category: category.category, detail: category.detail })
    const result = { reachable: false, error: `${category.category}: ${category.detail}` }
    ctx.log.emit({ type: 'peer:verified', peerId, ...result })
    return result
  }
}

/** A DHT lookup of a peer: "found by a DHT lookup" in the who-sees-whom matrix. */
export async function findPeer (ctx: NodeContext, peerId: string, outer?: AbortSignal, via?: string): Promise<{ found: boolean, addresses: string[], latencyMs: number, error?: string, closerPeers?: string[] }> {
  const started = performance.now()
  const { signal } = deadline(ctx.timing.dhtQueryTimeoutMs, linked(ctx, outer))
  if (via != null) {
    const answer = await findNodeVia(ctx, peerIdFromString(via), peerIdFromString(peerId), signal)
    const latencyMs = Math.round(performance.now() - started)
    return 'closer' in answer
      ? { found: answer.closer.includes(peerId), addresses: [], latencyMs, closerPeers: answer.closer }
      : { found: false, addresses: [], latencyMs, error: answer.error }
  }
  try {
    for await (const ev of dhtOf(ctx).findPeer(peerIdFromString(peerId), { signal })) {
      if (ev.type === EventTypes.FINAL_PEER) {
        ctx.metrics.recordQuery(true)
        return { found: true, addresses: ev.peer.multiaddrs.map(String), latencyMs: Math.round(performance.now() - started) }
      }
    }
    ctx.metrics.recordQuery(false)
    return { found: false, addresses: [], latencyMs: Math.round(performance.now() - started) }
  } catch (err) {
    ctx.metrics.recordQuery(false)
    return { found: false, addresses: [], latencyMs: Math.round(performance.now() - started), error: describeError(err) }
  }
}

export async function getProviderRecords (ctx: NodeContext, cid: string, outer?: AbortSignal): Promise<string[]> {
  const { signal } = deadline(ctx.timing.dhtQueryTimeoutMs, linked(ctx, outer))
  const providers = new Set<string>()
  try {
    for await (const ev of dhtOf(ctx).findProviders(CID.parse(cid), { signal })) {
      if (ev.type === EventTypes.PROVIDER) for (const p of ev.providers) providers.add(p.id.toString())
    }
  } catch {
    // A lookup cut short by its deadline still reports the providers it found.
  }
  ctx.metrics.recordQuery(providers.size > 0)
  return [...providers]
}

export async function provide (ctx: NodeContext, cid: string, outer?: AbortSignal): Promise<{ ok: boolean, error?: string }> {
  const { signal } = deadline(ctx.timing.dhtQueryTimeoutMs, linked(ctx, outer))
  let responses = 0
  let error: string | undefined
  try {
    for await (const ev of dhtOf(ctx).provide(CID.parse(cid), { signal })) {
      if (ev.type === EventTypes.PEER_RESPONSE) responses++
      if (ev.type === EventTypes.QUERY_ERROR) error = describeError(ev.error)
    }
  } catch (err) {
    error = describeError(err)
  }
  // Alone in the network the record is only stored locally, which is still a successful publish.
  const ok = responses > 0 || routingTablePeers(ctx).length === 0 || error == null
  ctx.log.emit({ type: 'file:provided', cid, ok, ...(ok || error == null ? {} : { error }) })
  return ok ? { ok } : { ok, error: error ?? 'no peer accepted the provider record' }
}

/**
 * Plan Solution #3: the six-step verification. Checks that do not apply (no other peer to dial, no shared file)
 * are listed in `skipped` and do not count against the overall result; a peer alone in the network is
 * "you might be first", which is a verified state, not an error.
 */
export async function verifyPeerDiscovery (ctx: NodeContext, sharedCids: string[], outer?: AbortSignal): Promise<DiscoveryStatus> {
  const step = (name: string, ok: boolean, detail: string): boolean => {
    ctx.log.emit({ type: 'discovery:step', step: name, ok, detail })
    return ok
  }
  await waitForWalk(ctx, outer)
  ctx.log.emit({ type: 'discovery:phase', phase: 'verifying', message: 'Verifying peer discovery...' })
  const skipped: string[] = []
  const connection = await bootstrapConnection(ctx, outer)
  const bootstrapConnected = step('bootstrapConnected', connection.ok, connection.detail)
  const table = routingTableSize(ctx)
  const routingTablePopulated = step('routingTablePopulated', table.size > 0, `DHT routing table has ${table.size} entries (${table.peers} peers)`)
  // Plan Step 3: "if no events fired, discovery events are broken" — a populated table must have been announced.
  // Counted, not read back from the log: a long-running node's early events may be past its retention.
  // kad-dht puts a peer in its bucket before an async peer-store write and only then announces it: a table read
  // in that gap holds an entry whose event is still on its way, so give the announcement a short grace.
  if (table.size > 0 && ctx.log.count('routing:add') === 0) await waitForEvent(ctx, 'routing:add', ROUTING_EVENT_GRACE_MS, outer)
  const announced = ctx.log.count('routing:add')
  const eventsWorking = step('eventsWorking', table.size > 0 && announced > 0, `${announced} routing-table events for ${table.size} entries`)
  const dhtTest = await testPeerDiscovery(ctx, 'discovery-test', outer)
  const dhtReadWrite = step('dhtReadWrite', dhtTest.success, dhtTest.success ? `read back in ${dhtTest.latencyMs} ms` : dhtTest.error ?? 'failed')
  const peers = listDiscoveredPeerIds(ctx)
  let peerDialing = false
  const unreachable: Array<{ peerId: string, error: string }> = []
  if (peers.length === 0) {
    skipped.push('peerDialing')
    step('peerDialing', true, 'skipped: no other peer discovered')
  } else {
    const results = await Promise.all(peers.map(async p => await verifyPeerReachable(ctx, p, outer)))
    const reachable = results.filter(r => r.reachable).length
    results.forEach((r, i) => { if (!r.reachable) unreachable.push({ peerId: peers[i]!, error: r.error ?? 'unreachable' }) })
    // Nothing listening any more means the peer left, and its entry is stale: churn, not a discovery failure.
    // Any other failure (timeout, reset, denied) means a peer that should be reachable is not, as far as this node
    // can tell (judgeWithDepartures: the harness, which knows who left, judges those again).
    const stale = unreachable.filter(u => isStaleDial(u.error)).length
    peerDialing = step('peerDialing', reachable > 0 && reachable + stale === peers.length,
      `${reachable}/${peers.length} discovered peers dialled${stale > 0 ? ` (${stale} stale: left the network)` : ''}`)
  }
  let fileDiscovery = false
  if (sharedCids.length === 0) {
    skipped.push('fileDiscovery')
    step('fileDiscovery', true, 'skipped (no files shared)')
  } else {
    const self = ctx.libp2p.peerId.toString()
    const found = await Promise.all(sharedCids.map(async cid => (await getProviderRecords(ctx, cid, outer)).includes(self)))
    fileDiscovery = step('fileDiscovery', found.every(Boolean), `${found.filter(Boolean).length}/${sharedCids.length} own provider records found`)
  }
  const checks = { bootstrapConnected, routingTablePopulated, eventsWorking, dhtReadWrite, peerDialing, fileDiscovery }
  const applicable = Object.entries(checks).filter(([name]) => !skipped.includes(name))
  const passed = applicable.filter(([, ok]) => ok).length
  let overall: DiscoveryStatus['overall'] = passed === applicable.length ? 'verified' : passed === 0 || !bootstrapConnected ? 'failed' : 'partial'
  // Finding nobody is "you might be first" only when someone says nobody else is there: two peers whose bootstrap
  // answers every lookup with no peers would otherwise both be "verified" while neither sees the other.
  const alone = overall === 'verified' && peers.length === 0 ? await othersOnline(ctx, outer) : undefined
  if (alone != null) {
    step('othersOnline', alone.others === 0, alone.detail)
    if (alone.others == null) overall = 'unknown'
    else if (alone.others > 0) overall = 'failed'
  }
  const firstPeer = overall === 'verified' && peers.length === 0
  const message = firstPeer
    ? '⚠️ No peers online yet - you might be first'
    : alone?.others != null && alone.others > 0
      ? `❌ Discovery broken - cannot find peers (the bootstrap has ${alone.others} other DHT peer${alone.others === 1 ? '' : 's'} connected, and none was discovered: DHT queries are failing)`
      : alone != null
        ? '⚠️ No peers found, and the bootstrap does not say whether anyone else is online - cannot tell "you might be first" from discovery failing'
        : overall === 'verified'
      ? `✅ Discovered ${peers.length} peer${peers.length === 1 ? '' : 's'} - discovery verified`
      : overall === 'partial'
        ? `⚠️ Partial discovery - some features may not work (${applicable.filter(([, ok]) => !ok).map(([n]) => n).join(', ')} failed)`
        : '❌ Discovery broken - cannot find peers'
  const status: DiscoveryStatus = {
    ...checks, overall, firstPeer, routingTableSize: table.peers, discoveredPeers: peers, unreachable, skipped, message
  }
  ctx.log.emit({ type: 'discovery:phase', phase: firstPeer ? 'first-peer' : overall, message })
  ctx.log.emit({ type: 'discovery:status', status })
  return status
}

/**
 * How many other DHT peers the current bootstrap has connected, from its own answer (chiral's hello). Null when it
 * does not say (an external bootstrap): its empty FIND_NODE answers are no evidence, since a bootstrap that keeps
 * only routable addresses answers every lookup with no peers while others are online.
 */
async function othersOnline (ctx: NodeContext, outer?: AbortSignal): Promise<{ others: number | null, detail: string }> {
  const address = ctx.currentBootstrap
  if (address == null) return { others: null, detail: 'not connected to a bootstrap: nobody to ask who else is online' }
  const { signal } = deadline(ctx.timing.healthPingTimeoutMs, linked(ctx, outer))
  try {
    const connection = await ctx.libp2p.dial(multiaddr(address), { signal })
    const hello = await askHello(connection, signal)
    if (hello != null) {
      const others = otherPeersOf(hello)
      return { others, detail: `the bootstrap reports ${others} other DHT peer${others === 1 ? '' : 's'} connected` }
    }
    const answered = [...ctx.log.since(0)].reverse().find(e => e.type === 'bootstrap:identified')
    const closer = answered != null && 'closerPeers' in answered ? answered.closerPeers : null
    return { others: null, detail: `the bootstrap does not report its peers${closer != null ? ` (it answered this node's FIND_NODE with ${closer} peer${closer === 1 ? '' : 's'}, which does not show who is online)` : ''}` }
  } catch (err) {
    return { others: null, detail: `could not ask the bootstrap who else is online: ${describeError(err)}` }
  }
}

/**
 * Plan Step 1's "connected to bootstrap node": an open connection, or, when the bootstrap has closed the one
 * connectWithTimeout made, a fresh one it accepts. Bootstraps that close idle connections (rust-libp2p ≤ 0.54's
 * idle timeout of 0 s) drop every connection the instant identify ends; that is how they run, not a lost
 * bootstrap, and judging them by an open connection called a working network "Discovery broken".
 */
async function bootstrapConnection (ctx: NodeContext, outer?: AbortSignal): Promise<{ ok: boolean, detail: string }> {
  if ([...ctx.bootstrapPeerIds].some(id => isConnectedTo(ctx, id))) return { ok: true, detail: ctx.currentBootstrap ?? 'connected' }
  if (ctx.currentBootstrap == null) return { ok: false, detail: 'no bootstrap connection' }
  const { signal } = deadline(ctx.timing.peerDialTimeoutMs, linked(ctx, outer))
  try {
    await ctx.libp2p.dial(multiaddr(ctx.currentBootstrap), { signal })
    return { ok: true, detail: `${ctx.currentBootstrap}: it had closed our connection and accepted a fresh one (a bootstrap that closes idle connections)` }
  } catch (err) {
    return { ok: false, detail: `${ctx.currentBootstrap}: our connection is gone and a fresh dial failed: ${describeError(err)}` }
  }
}

/**
 * Plan Step 1: give the Kademlia walk up to `discoveryVerificationDelayMs` after the bootstrap connection to put
 * something in the routing table. It returns as soon as the table has an entry, so a fast network is not slowed.
 */
async function waitForWalk (ctx: NodeContext, outer?: AbortSignal): Promise<void> {
  if (ctx.connectedAt == null || routingTablePeers(ctx).length > 0) return
  const remaining = ctx.connectedAt + ctx.timing.discoveryVerificationDelayMs - Date.now()
  if (remaining <= 0) return
  ctx.log.emit({ type: 'discovery:phase', phase: 'populating', message: 'Waiting for DHT routing table to populate...' })
  await waitForEvent(ctx, 'routing:add', remaining, outer)
}

/**
 * Real milliseconds: the gap between kad-dht's bucket insertion and its `peer:add` is one peer-store write, a few
 * ms on a quiet machine; a second leaves room for a loaded runner without hiding events that never come.
 */
export const ROUTING_EVENT_GRACE_MS = 1000

/** Resolves at the node's next event of `type`, after `ms`, or when the node stops or `outer` aborts. */
async function waitForEvent (ctx: NodeContext, type: NodeEventType, ms: number, outer?: AbortSignal): Promise<void> {
  const signal = linked(ctx, outer)
  await new Promise<void>(resolve => {
    const finish = (): void => { clearTimeout(timer); unsubscribe(); signal.removeEventListener('abort', finish); resolve() }
    const timer = setTimeout(finish, ms)
    const unsubscribe = ctx.log.subscribe(ev => { if (ev.type === type) finish() })
    if (signal.aborted) finish()
    else signal.addEventListener('abort', finish, { once: true })
  })
}

/**
 * Plan Solution #3.10: poll every 2 s (woken early by discovery events) until every expected peer — or, with
 * none named, at least one new peer — has been discovered and dialled.
 */
export async function waitForBidirectionalDiscovery (
  ctx: NodeContext, request: { peerIds?: string[], timeoutMs?: number }, outer?: AbortSignal
): Promise<{ success: boolean, durationMs: number, verified: Array<{ peerId: string, afterMs: number, latencyMs?: number }>, missing: string[] }> {
  const started = Date.now()
  // Real time at every timeScale (nodes/timing.ts, UNSCALED): discovery is network work.
  const timeoutMs = request.timeoutMs ?? ctx.timing.bidirectionalDiscoveryTimeoutMs
  const { signal } = deadline(timeoutMs, linked(ctx, outer))
  const expected = request.peerIds
  const verified = new Map<string, { peerId: string, afterMs: number, latencyMs?: number }>()
  const done = (): boolean => expected == null ? verified.size > 0 : expected.every(p => verified.has(p))
  let wake: (() => void) | undefined
  const unsubscribe = ctx.log.subscribe(ev => { if (ev.type === 'peer:discovered') wake?.() })
  try {
    while (!done() && !signal.aborted) {
      const candidates = listDiscoveredPeerIds(ctx).filter(p => !verified.has(p) && (expected == null || expected.includes(p)))
      for (const peerId of candidates) {
        ctx.log.emit({ type: 'log', level: 'info', message: `✅ Discovered peer ${peerId} - testing connection...` })
        const r = await verifyPeerReachable(ctx, peerId, signal)
        if (r.reachable) {
          verified.set(peerId, { peerId, afterMs: Date.now() - started, ...(r.latencyMs != null ? { latencyMs: r.latencyMs } : {}) })
          ctx.log.emit({ type: 'log', level: 'info', message: `✅ Connected to ${peerId} - discovery verified!` })
        }
      }
      if (done()) break
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, ctx.timing.discoveryPollIntervalMs)
        wake = () => { clearTimeout(t); resolve() }
        signal.addEventListener('abort', wake, { once: true })
      })
    }
  } finally {
    unsubscribe()
  }
  const missing = expected == null ? (verified.size > 0 ? [] : ['(any new peer)']) : expected.filter(p => !verified.has(p))
  return { success: done(), durationMs: Date.now() - started, verified: [...verified.values()], missing }
}
