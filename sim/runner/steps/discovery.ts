import type { StepMatrix } from '../../../scenarios/record.ts'
import type { RunContext } from '../context.ts'
import { computeMatrix } from '../matrix.ts'
import { forEach, type StepHandlers, type StepOf } from './handler.ts'

/** verify, waitBidirectional, refresh, matrix: discovery (plan Solution #3) and who sees whom, as steps. */
export const discoverySteps: StepHandlers<'verify' | 'waitBidirectional' | 'refresh' | 'matrix'> = {
  verify: async (ctx, step, refs) => { await forEach(refs, async n => { await verify(ctx, step, n) }) },
  waitBidirectional: async (ctx, step, refs) => { await waitBidirectional(ctx, step, refs) },
  refresh: async (ctx, _step, refs) => { await forEach(refs, async n => { await ctx.roster.handle(n).call('refreshRoutingTable', {}, { signal: ctx.signal }) }) },
  matrix: async (ctx, step) => { await matrix(ctx, step) }
}

async function verify (ctx: RunContext, step: StepOf<'verify'>, name: string): Promise<void> {
  const s = await ctx.roster.handle(name).call('verifyPeerDiscovery', {}, { signal: ctx.signal })
  const e = step.expect
  if (e == null) return
  const id = `${ctx.evidence.currentStep}-verify-${name}`
  const p = step.planRef
  if (e.overall != null) ctx.evidence.expect({ id: `${id}-overall`, description: `${name}'s discovery status is "${e.overall}"`, expected: e.overall, actual: `${s.overall}: ${s.message}`, passed: s.overall === e.overall, planRef: p })
  if (e.firstPeer != null) ctx.evidence.expect({ id: `${id}-first`, description: `${name} ${e.firstPeer ? 'reports' : 'does not report'} "you might be first"`, expected: e.firstPeer, actual: s.firstPeer, passed: s.firstPeer === e.firstPeer, planRef: p })
  if (e.routingTablePeers != null) ctx.evidence.expect({ id: `${id}-table`, description: `${name}'s routing table holds ${e.routingTablePeers} peer(s)`, expected: e.routingTablePeers, actual: s.routingTableSize, passed: s.routingTableSize === e.routingTablePeers, planRef: p })
  if (e.message != null) ctx.evidence.expect({ id: `${id}-message`, description: `${name} shows "${e.message}"`, expected: e.message, actual: s.message, passed: s.message.includes(e.message), planRef: p })
  for (const [check, want] of Object.entries(e.checks ?? {})) {
    const got = s[check as keyof typeof s]
    ctx.evidence.expect({ id: `${id}-${check}`, description: `${name}: ${check} is ${String(want)}`, expected: want, actual: s.skipped.includes(check) ? `${String(got)} (skipped)` : got, passed: got === want, planRef: p })
  }
}

async function waitBidirectional (ctx: RunContext, step: StepOf<'waitBidirectional'>, names: string[]): Promise<void> {
  const peerIdOf = (n: string): string => ctx.roster.node(n).peerId ?? ''
  const results = await Promise.all(names.map(async n => ({
    name: n,
    result: await ctx.roster.handle(n).call('waitForBidirectionalDiscovery', { peerIds: names.filter(o => o !== n).map(peerIdOf), timeoutMs: step.withinMs }, { signal: ctx.signal })
  })))
  // Real time (nodes/timing.ts, UNSCALED): the plan's 15 s bounds libp2p's own discovery work.
  const limit = step.withinMs
  for (const { name, result } of results) {
    const slowest = Math.max(0, ...result.verified.map(v => v.afterMs))
    ctx.evidence.expect({
      id: `bidirectional-${ctx.evidence.currentStep}-${name}`,
      description: `${name} discovers and dials ${names.filter(o => o !== name).join(', ')} within ${limit} ms (real time at every timeScale)`,
      expected: `all seen within ${limit} ms`,
      actual: result.success ? `all seen after ${slowest} ms` : `missing ${result.missing.map(m => ctx.roster.nameOfPeer(m)).join(', ')} after ${result.durationMs} ms`,
      passed: result.success && slowest <= limit,
      planRef: step.planRef
    })
  }
}

async function matrix (ctx: RunContext, step: StepOf<'matrix'>): Promise<void> {
  const m = await computeMatrix(ctx, { lookups: step.lookups, probe: step.probe })
  ctx.evidence.matrix = m
  const snapshot: StepMatrix = { step: ctx.evidence.currentStep, ...(step.label != null ? { label: step.label } : {}), matrix: m }
  ctx.evidence.matrices.push(snapshot)
  const want = step.expect
  if (want == null) return
  const blindKey = (peers: readonly string[], cause: string): string => `${[...peers].sort().join(' and ')} see neither each other: ${cause}`
  const got = [...m.asymmetries.map(a => `${a.sees}→${a.unseen}: ${a.cause}`), ...m.blind.map(b => blindKey(b.peers, b.cause))]
  const expected = [...want.asymmetries.map(a => `${a.sees}→${a.unseen}: ${a.cause}`), ...want.blind.map(b => blindKey(b.peers, b.cause))]
  const passed = got.length === expected.length && expected.every(x => got.includes(x))
  snapshot.passed = passed
  ctx.evidence.expect({
    id: `${ctx.evidence.currentStep}-matrix`,
    description: expected.length === 0 ? 'every peer pair sees each other symmetrically, and no two peers of a bootstrap are blind to each other' : `the asymmetric and mutually blind pairs and their diagnosis are ${expected.join(', ')}`,
    expected: expected.length === 0 ? 'no asymmetry, no blind pair' : expected,
    actual: got.length === 0 ? 'no asymmetry, no blind pair' : got,
    passed,
    planRef: step.planRef
  })
}
