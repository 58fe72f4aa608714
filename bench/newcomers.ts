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
 *   contact after identify and a ping: the admission is what failed or is late);
 * - `lookup-not-found` (lookup mode): a side's DHT lookups did not find the other within the window;
 * - `join-failed`: the newcomer's connectWithTimeout failed.
 * Each pair also carries X's rank among all peers by Kademlia distance to the newcomer (1 = closest): the
 * newcomer's self-walk ends at its K = 20 closest, so a rank within K is expected to be reached and a larger one
 * is reached only by chance.
 */
export const NEWCOMER_WINDOW_MS = 15_000

/**
 * `passive`: nobody looks for anybody; the pair is visible when kad-dht's own traffic (the newcomer's self-walk, the
 * routing tables) made each discover the other. `lookup`: each side asks the DHT for the other as soon as the
 * newcomer's connect returned (findPeer, again every 100 ms until found or the window ends), as a user who wants to
 * reach a particular peer does: the figure is how soon a newcomer can be found by, and can find, any peer.
 * The two are measured on different newcomers, since a lookup is itself a discovery.
 */
export type NewcomerMode = 'passive' | 'lookup'
export const NEWCOMER_MODES: readonly NewcomerMode[] = ['passive', 'lookup']

/**
 * The bootstrap's "busy" threshold for a bench population: every peer, every newcomer of every mode (they stay
 * connected), and room for a few redials. A threshold of N + 10 turned all but 10 of 40 newcomers at N = 1000 away as
 * busy, which the newcomer figures then counted as failed joins.
 */
export function benchBootstrapMaxPeers (n: number, newcomers: number): number {
  return Math.max(1_000, n + NEWCOMER_MODES.length * newcomers + 50)
}

export type NewcomerMiss = 'join-failed' | 'lookup-not-found' | 'never-in-contact' | 'newcomer-only' | 'x-only' | 'connected-not-admitted'

export interface NewcomerPair {
  mutualMs: number | null
  newcomerSawXMs: number | null
  xSawNewcomerMs: number | null
  connectedMs: number | null
  /** X's rank among the existing peers by XOR distance of kad keys to the newcomer (1 = closest). */
  kadRank: number
  /** The newcomer's connectWithTimeout (the join), in ms. */
  joinMs: number | null
  /** A failed join's error category (the plan's: busy, timeout, refused, …), so a miss says whose fault it was. */
  joinError?: string
  /** lookup mode: when each side's findPeer first found the other, and the lookups made (both sides). */
  lookup?: { newcomerFoundXMs: number | null, xFoundNewcomerMs: number | null, attempts: number }
  miss?: NewcomerMiss
}

export interface NewcomerResult {
  mode: NewcomerMode
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
  mode?: NewcomerMode
  windowMs?: number
  onProgress?: (msg: string) => void
}): Promise<NewcomerResult> {
  const windowMs = opts.windowMs ?? NEWCOMER_WINDOW_MS
  const mode = opts.mode ?? 'passive'
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
    let joinMs: number | null = null
    const found = { newcomerFoundXMs: null as number | null, xFoundNewcomerMs: null as number | null, attempts: 0 }
    // One side's lookups of the other until one finds it (its addresses in the answer) or the window ends.
    const lookUp = async (from: Member, target: string, key: 'newcomerFoundXMs' | 'xFoundNewcomerMs'): Promise<void> => {
      while (Date.now() - t0 < windowMs) {
        found.attempts++
        const r = await from.handle.call('findPeer', { peerId: target }).catch(() => ({ found: false }))
        if (r.found) { found[key] = Date.now() - t0; return }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
    let joinError: string | undefined
    try {
      const r = await newcomer.handle.call('connectWithTimeout', {})
      joinMs = r.success ? Date.now() - t0 : null
      if (!r.success) joinError = r.error?.category ?? 'unknown'
      if (r.success && mode === 'lookup') await Promise.all([lookUp(newcomer, x.peerId, 'newcomerFoundXMs'), lookUp(x, newcomer.peerId, 'xFoundNewcomerMs')])
      if (r.success) await withDeadline(both, Math.max(0, windowMs - (Date.now() - t0)), 'window').catch(() => {})
    } finally {
      for (const u of unsubscribe) u()
    }
    // Mutual: each side's own peer:discovered event for the other; in lookup mode each side's lookup found the other too.
    const ends = mode === 'lookup' ? [seen.nx, seen.xn, found.newcomerFoundXMs, found.xFoundNewcomerMs] : [seen.nx, seen.xn]
    const last = ends.every(t => t != null) ? Math.max(...(ends as number[])) : null
    const mutualMs = last != null && last <= windowMs ? last : null
    const pair: NewcomerPair = { mutualMs, newcomerSawXMs: seen.nx, xSawNewcomerMs: seen.xn, connectedMs: seen.conn, kadRank: kadRank(newcomer.peerId, x.peerId, existingIds), joinMs, ...(joinError != null ? { joinError } : {}), ...(mode === 'lookup' ? { lookup: found } : {}) }
    if (mutualMs == null) {
      pair.miss = joinMs == null
        ? 'join-failed'
        : mode === 'lookup' && (found.newcomerFoundXMs == null || found.xFoundNewcomerMs == null) ? 'lookup-not-found' : missOf(seen)
    }
    pairs.push(pair)
    opts.onProgress?.(`newcomer ${i + 1}/${opts.count} (${mode}): ${mutualMs != null ? `mutually visible in ${mutualMs} ms` : `not within ${windowMs} ms (${pair.miss}${joinError != null ? `: ${joinError}` : ''})`}, join ${joinMs ?? '—'} ms, X's kad rank ${pair.kadRank}${mode === 'lookup' ? `, ${found.attempts} lookups` : ''}`)
  }
  const count = (list: NewcomerPair[]): { tried: number, mutual: number } => ({ tried: list.length, mutual: list.filter(p => p.mutualMs != null).length })
  const misses: Partial<Record<NewcomerMiss, number>> = {}
  for (const p of pairs) if (p.miss != null) misses[p.miss] = (misses[p.miss] ?? 0) + 1
  return {
    mode,
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
