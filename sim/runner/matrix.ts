import type { NodeInspection } from '../../nodes/schemas.ts'
import { diagnose, diagnoseBlind } from '../diagnosis.ts'
import type { Asymmetry, BlindPair, Matrix } from '../../scenarios/record.ts'
import type { RunContext } from './context.ts'
import { runningNode } from './node-state.ts'
import { sleep } from '../../nodes/util.ts'

/**
 * How long a matrix waits for routing-table admissions already under way (real ms). A pair that is connected and
 * identified but not yet admitted (kad-dht pings a contact before adding it; ≈ 100 ms on memory, about 1 s for a
 * bootstrap under load) is not an asymmetry yet; one still pending after this long is reported as such.
 */
export const MATRIX_SETTLE_MS = 3_000
const SETTLE_POLL_MS = 100

interface Snapshot {
  peers: NodeInspection[]
  bootstraps: NodeInspection[]
  at: number
}

/**
 * The who-sees-whom matrix over every running peer. A "sees" B when B is in A's Kademlia routing table: that is
 * what lookups route through, and it is stable. The other signals (a discovery event, a lookup) are kept as
 * columns: libp2p also announces peers it merely identified, so "discovered" alone would make the verdict depend
 * on timing. Inspections are taken first and all at once, before any lookup, because a lookup or a dial
 * between the two peers would itself heal the asymmetry it is meant to measure; while the only gaps are
 * admissions under way, the inspections are taken again (up to MATRIX_SETTLE_MS), which heals nothing.
 *
 * Besides one-sided pairs, the matrix reports pairs that are blind both ways although both peers joined through
 * the same bootstrap: nothing is asymmetric there, and the DHT still fails them both.
 */
export async function computeMatrix (ctx: RunContext, opts: { lookups: boolean, probe: boolean }): Promise<Matrix> {
  const started = Date.now()
  let snap = await inspectAll(ctx)
  while (pendingAdmissions(ctx, snap, Date.now() - started) && Date.now() - started < MATRIX_SETTLE_MS) {
    await sleep(SETTLE_POLL_MS, ctx.signal)
    snap = await inspectAll(ctx)
  }
  const settledMs = snap.at - started
  const { peers, bootstraps } = snap
  const lookup = new Map<string, boolean>()
  if (opts.lookups) {
    for (const a of peers) {
      for (const b of peers) {
        if (a === b) continue
        const r = await ctx.roster.handle(a.name).call('findPeer', { peerId: b.peerId }, { signal: ctx.signal })
        lookup.set(`${a.name}>${b.name}`, r.found)
      }
    }
  }
  const dialable = new Map<string, boolean>()
  if (opts.probe) {
    for (const a of peers) {
      for (const b of peers) {
        if (a === b) continue
        const r = await ctx.roster.handle(a.name).call('verifyPeerReachable', { peerId: b.peerId, fresh: true }, { signal: ctx.signal })
        dialable.set(`${a.name}>${b.name}`, r.reachable)
      }
    }
  }
  // The probes recorded their failures on the nodes: read the state again so the diagnosis sees them.
  const final = opts.probe ? await Promise.all(peers.map(async p => await ctx.roster.handle(p.name).call('inspect', {}, { signal: ctx.signal }))) : peers
  const cells = peers.flatMap(a => peers.filter(b => b !== a).map(b => {
    const inRoutingTable = a.routingTable.includes(b.peerId)
    const canDial = dialable.get(`${a.name}>${b.name}`) ?? null
    return { from: a.name, to: b.name, inRoutingTable, discovered: a.discoveredPeerIds.includes(b.peerId), foundByLookup: lookup.get(`${a.name}>${b.name}`) ?? null, dialable: canDial, sees: inRoutingTable && canDial !== false }
  }))
  const seen = (from: string, to: string): boolean => cells.find(c => c.from === from && c.to === to)?.sees ?? false
  const asymmetries: Asymmetry[] = []
  for (const a of final) {
    for (const b of final) {
      if (a === b || !seen(a.name, b.name) || seen(b.name, a.name)) continue
      asymmetries.push({ sees: a.name, unseen: b.name, ...diagnose({ seer: a, blind: b, bootstraps, events: ctx.evidence.events, settledMs }) })
    }
  }
  const blind: BlindPair[] = []
  for (const [i, a] of final.entries()) {
    for (const b of final.slice(i + 1)) {
      if (seen(a.name, b.name) || seen(b.name, a.name)) continue
      const shared = sharedBootstrap(ctx, a, b)
      if (shared == null) continue
      // Asked after the snapshot, so what the lookups change cannot change the verdict. Each peer asks for its own
      // key, as its walk does: a bootstrap that returns a peer only when asked for that very peer (go-libp2p's
      // "the target itself, if connected") still lets nobody discover anybody.
      const ask = async (from: NodeInspection): Promise<string[] | null> => {
        // Twice at most: an idle-closing bootstrap may drop the connection the first request went out on.
        for (let i = 0; i < 2; i++) {
          const r = await ctx.roster.handle(from.name).call('findPeer', { peerId: from.peerId, via: shared.peerId }, { signal: ctx.signal }).catch(() => null)
          if (r?.closerPeers != null) return r.closerPeers
        }
        return null
      }
      const answers = { aForB: await ask(a), bForA: await ask(b) }
      const inspection = bootstraps.find(x => x.peerId === shared.peerId)
      blind.push({
        peers: [a.name, b.name],
        bootstrap: shared.name,
        ...diagnoseBlind({ a, b, bootstrap: { name: shared.name, ...(inspection != null ? { inspection } : {}) }, answers, events: ctx.evidence.events, settledMs })
      })
    }
  }
  return { peers: peers.map(p => p.name), at: snap.at, cells, asymmetries, blind, settledMs }
}

async function inspectAll (ctx: RunContext): Promise<Snapshot> {
  const running = [...ctx.roster.nodes.values()].map(n => runningNode(n.state)).filter(n => n != null)
  const inspections = await Promise.all(running.map(async n => await n.handle.call('inspect', {}, { signal: ctx.signal })))
  return { peers: inspections.filter(i => i.role === 'peer'), bootstraps: inspections.filter(i => i.role === 'bootstrap'), at: Date.now() }
}

/** Whether some gap between two peers is only an admission under way (given how long the matrix has waited). */
function pendingAdmissions (ctx: RunContext, snap: Snapshot, waitedMs: number): boolean {
  for (const a of snap.peers) {
    for (const b of snap.peers) {
      if (a === b || b.routingTable.includes(a.peerId)) continue
      // Only gaps the matrix reports: one side of an asymmetry, or a pair blind both ways.
      if (!a.routingTable.includes(b.peerId) && sharedBootstrap(ctx, a, b) == null) continue
      if (diagnose({ seer: a, blind: b, bootstraps: snap.bootstraps, events: ctx.evidence.events, settledMs: waitedMs }).cause === 'admission-pending') return true
    }
  }
  return false
}

/**
 * A bootstrap (chiral-sim's or external) both peers joined through: one each is connected to now, or its last
 * successful connect ended on. An idle-closing bootstrap leaves no open connection, so the connect counts too.
 */
function sharedBootstrap (ctx: RunContext, a: NodeInspection, b: NodeInspection): { name: string, peerId: string } | undefined {
  const bootstraps = [...ctx.roster.nodes.values()].filter(n => (n.spec.role === 'bootstrap' || n.spec.role === 'external') && n.peerId != null)
  const joined = (p: NodeInspection): Set<string> => {
    const ids = new Set(p.connections.filter(c => c.status === 'open').map(c => c.peerId))
    const last = [...ctx.evidence.events].reverse().find(e => e.node === p.name && e.type === 'connect:done' && 'success' in e && e.success)
    const via = last != null && 'bootstrap' in last ? last.bootstrap?.split('/p2p/')[1] : undefined
    if (via != null) ids.add(via)
    return ids
  }
  const ofA = joined(a)
  const ofB = joined(b)
  const shared = bootstraps.find(n => ofA.has(n.peerId!) && ofB.has(n.peerId!))
  return shared == null ? undefined : { name: shared.name, peerId: shared.peerId! }
}
