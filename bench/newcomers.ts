import { createHash } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import type { NodeHandle } from '../nodes/commands.ts'
import { withDeadline } from '../nodes/util.ts'
import { round, summarize, type Summary } from './util.ts'

/**
 * Newcomer visibility (issue 13): after the population converged, newcomers join one at a time; for each, a seeded
 * random existing peer X is picked, and the figure is the time from the newcomer's connectWithTimeout call until
 * each has discovered the other (its `peer:discovered` event: routing-table entry or DHT query result). Times are
 * the events' own timestamps (the nodes run on this machine's clock), so neither the harness's waiting nor an event
 * stream's delay (shards: over each node's control channel) adds to them.
 *
 * A pair not mutually visible within the window is explained from the same events, so that a miss is attributed to
 * the mechanism and not guessed:
 * - `never-in-contact`: no connection between the two opened and neither learned the other from a query: the
 *   newcomer's walk did not reach X and X made no query that returned the newcomer;
 * - `newcomer-only` / `x-only`: one side learned the other (from a query result) but no connection opened, so
 *   the other side had nothing to admit;
 * - `connected-not-admitted`: a connection opened and still one side did not add the other (kad-dht admits a
 *   contact after identify and a ping: the admission is what failed or is late).
 * Each pair also carries X's rank among all peers by Kademlia distance to the newcomer (1 = closest): the
 * newcomer's self-walk ends at its K = 20 closest, so a rank within K is expected to be reached and a larger one
 * is reached only by chance.
 */
export const NEWCOMER_WINDOW_MS = 15_000

export type NewcomerMiss = 'never-in-contact' | 'newcomer-only' | 'x-only' | 'connected-not-admitted'

export interface NewcomerPair {
  mutualMs: number | null
  newcomerSawXMs: number | null
  xSawNewcomerMs: number | null
  connectedMs: number | null
  /** X's rank among the existing peers by XOR distance of kad keys to the newcomer (1 = closest). */
  kadRank: number
  miss?: NewcomerMiss
}

export interface NewcomerResult {
  tried: number
  mutual: number
  windowMs: number
  mutualMs: Summary
  /** Pairs with X within the newcomer's K = 20 closest peers: mutual / tried among them. */
  withinK: { tried: number, mutual: number }
  beyondK: { tried: number, mutual: number }
  misses: Partial<Record<NewcomerMiss, number>>
  pairs: NewcomerPair[]
}

const K = 20

/** kad-dht's key of a peer: sha256 of its multihash (kad-dht's convertPeerId). */
function kadKey (peerId: string): Buffer {
  return createHash('sha256').update(peerIdFromString(peerId).toMultihash().bytes).digest()
}

function xorCompare (a: Buffer, b: Buffer, target: Buffer): number {
  for (let i = 0; i < target.length; i++) {
    const d = (a[i]! ^ target[i]!) - (b[i]! ^ target[i]!)
    if (d !== 0) return d
  }
  return 0
}

export function kadRank (newcomer: string, x: string, existing: string[]): number {
  const target = kadKey(newcomer)
  const xKey = kadKey(x)
  return 1 + existing.filter(p => p !== x && xorCompare(kadKey(p), xKey, target) < 0).length
}

/** A node as the bench reaches it: in-process (LocalNode) or over its control channel (shards). */
export interface Member { peerId: string, handle: NodeHandle }

/** Why a pair was not mutually visible, from what each side saw (times in ms, null = never). */
export function missOf (seen: { nx: number | null, xn: number | null, conn: number | null }): NewcomerMiss {
  if (seen.conn != null) return 'connected-not-admitted'
  if (seen.nx != null) return 'newcomer-only'
  return seen.xn != null ? 'x-only' : 'never-in-contact'
}

export async function measureNewcomers (opts: {
  count: number
  existing: Member[]
  start: (index: number) => Promise<Member>
  rand: () => number
  windowMs?: number
  onProgress?: (msg: string) => void
}): Promise<NewcomerResult> {
  const windowMs = opts.windowMs ?? NEWCOMER_WINDOW_MS
  const existingIds = opts.existing.map(p => p.peerId)
  const pairs: NewcomerPair[] = []
  for (let i = 0; i < opts.count; i++) {
    const newcomer = await opts.start(i)
    const x = opts.existing[Math.floor(opts.rand() * opts.existing.length)]!
    const seen: { nx: number | null, xn: number | null, conn: number | null } = { nx: null, xn: null, conn: null }
    let done: () => void = () => {}
    const both = new Promise<void>(resolve => { done = resolve })
    const t0 = Date.now()
    // From seq 0: neither can have seen the other, or been connected to it, before the newcomer existed.
    const watch = (self: Member, other: string, key: 'nx' | 'xn'): () => void => self.handle.subscribe(ev => {
      if (ev.type === 'peer:discovered' && ev.peerId === other) seen[key] ??= ev.time - t0
      if (ev.type === 'connection:open' && ev.peerId === other) seen.conn ??= ev.time - t0
      if (seen.nx != null && seen.xn != null) done()
    }, 0)
    const unsubscribe = [watch(newcomer, x.peerId, 'nx'), watch(x, newcomer.peerId, 'xn')]
    try {
      const r = await newcomer.handle.call('connectWithTimeout', {})
      if (r.success) await withDeadline(both, Math.max(0, windowMs - (Date.now() - t0)), 'window').catch(() => {})
    } finally {
      for (const u of unsubscribe) u()
    }
    const mutualMs = seen.nx != null && seen.xn != null && Math.max(seen.nx, seen.xn) <= windowMs ? Math.max(seen.nx, seen.xn) : null
    const pair: NewcomerPair = { mutualMs, newcomerSawXMs: seen.nx, xSawNewcomerMs: seen.xn, connectedMs: seen.conn, kadRank: kadRank(newcomer.peerId, x.peerId, existingIds) }
    if (mutualMs == null) pair.miss = missOf(seen)
    pairs.push(pair)
    opts.onProgress?.(`newcomer ${i + 1}/${opts.count}: ${mutualMs != null ? `mutually visible in ${mutualMs} ms` : `not within ${windowMs} ms (${pair.miss})`}, X's kad rank ${pair.kadRank}`)
  }
  const count = (list: NewcomerPair[]): { tried: number, mutual: number } => ({ tried: list.length, mutual: list.filter(p => p.mutualMs != null).length })
  const misses: Partial<Record<NewcomerMiss, number>> = {}
  for (const p of pairs) if (p.miss != null) misses[p.miss] = (misses[p.miss] ?? 0) + 1
  return {
    tried: pairs.length,
    mutual: pairs.filter(p => p.mutualMs != null).length,
    windowMs,
    mutualMs: summarize(pairs.flatMap(p => p.mutualMs != null ? [p.mutualMs] : [])),
    withinK: count(pairs.filter(p => p.kadRank <= K)),
    beyondK: count(pairs.filter(p => p.kadRank > K)),
    misses,
    pairs
  }
}
