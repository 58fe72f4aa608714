import type { NodeInspection } from '../nodes/schemas.ts'
import { diagnose } from './diagnosis.ts'
import type { Matrix } from './record.ts'
import type { RunContext } from './runner/context.ts'

/**
 * The who-sees-whom matrix over every running peer. A "sees" B when B is in A's Kademlia routing table: that is
 * what lookups route through, and it is stable. The other signals (a discovery event, a lookup) are kept as
 * columns: libp2p also announces peers it merely identified, so "discovered" alone would make the verdict depend
 * on timing. Inspections are taken first and all at once, before any lookup, because a lookup or a dial
 * between the two peers would itself heal the asymmetry it is meant to measure.
 */
export async function computeMatrix (ctx: RunContext, opts: { lookups: boolean, probe: boolean }): Promise<Matrix> {
  const running = [...ctx.nodes.values()].filter(n => n.running != null)
  const inspections = await Promise.all(running.map(async n => await n.running!.handle.call('inspect', {}, { signal: ctx.signal })))
  const peers = inspections.filter(i => i.role === 'peer')
  const bootstraps = inspections.filter(i => i.role === 'bootstrap')
  const sees = (a: NodeInspection, b: NodeInspection): { inRoutingTable: boolean, discovered: boolean } => ({
    inRoutingTable: a.routingTable.includes(b.peerId),
    discovered: a.discoveredPeerIds.includes(b.peerId)
  })
  const lookup = new Map<string, boolean>()
  if (opts.lookups) {
    for (const a of peers) {
      for (const b of peers) {
        if (a === b) continue
        const r = await ctx.handle(a.name).call('findPeer', { peerId: b.peerId }, { signal: ctx.signal })
        lookup.set(`${a.name}>${b.name}`, r.found)
      }
    }
  }
  const dialable = new Map<string, boolean>()
  if (opts.probe) {
    for (const a of peers) {
      for (const b of peers) {
        if (a === b) continue
        const r = await ctx.handle(a.name).call('verifyPeerReachable', { peerId: b.peerId, fresh: true }, { signal: ctx.signal })
        dialable.set(`${a.name}>${b.name}`, r.reachable)
      }
    }
  }
  // The probes recorded their failures on the nodes: read the state again so the diagnosis sees them.
  const final = opts.probe ? await Promise.all(peers.map(async p => await ctx.handle(p.name).call('inspect', {}, { signal: ctx.signal }))) : peers
  const cells = peers.flatMap(a => peers.filter(b => b !== a).map(b => {
    const s = sees(a, b)
    const canDial = dialable.get(`${a.name}>${b.name}`) ?? null
    return { from: a.name, to: b.name, ...s, foundByLookup: lookup.get(`${a.name}>${b.name}`) ?? null, dialable: canDial, sees: s.inRoutingTable && canDial !== false }
  }))
  const seen = (from: string, to: string): boolean => cells.find(c => c.from === from && c.to === to)?.sees ?? false
  const asymmetries = []
  for (const a of final) {
    for (const b of final) {
      if (a === b || !seen(a.name, b.name) || seen(b.name, a.name)) continue
      asymmetries.push({ sees: a.name, unseen: b.name, ...diagnose({ seer: a, blind: b, bootstraps, events: ctx.events }) })
    }
  }
  return { peers: peers.map(p => p.name), at: Date.now(), cells, asymmetries }
}
