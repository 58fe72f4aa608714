import type { NodeEvent } from '../../../nodes/events.ts'
import { sleep } from '../../../nodes/util.ts'
import type { Check, Condition } from '../../../scenarios/schema.ts'
import { ScenarioAbort, type RunContext } from '../context.ts'
import type { StepHandlers, StepOf } from './handler.ts'

/** wait, pause, assert: conditions with a deadline, plan time passing, and checks on the events so far. */
export const conditionSteps: StepHandlers<'wait' | 'pause' | 'assert'> = {
  wait: async (ctx, step) => { await waitFor(ctx, step) },
  pause: async (ctx, step) => { await sleep(ctx.scaled(step.ms), ctx.signal) },
  assert: async (ctx, step) => { check(ctx, step) }
}

function matches (ev: NodeEvent, where: Record<string, unknown> | undefined): boolean {
  if (where == null) return true
  return Object.entries(where).every(([path, want]) => {
    let v: unknown = ev
    for (const key of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[key]
    return v === want
  })
}

/** Evaluates a condition now; returns whether it holds and what was seen (for the assertion's "actual"). */
export async function evaluate (ctx: RunContext, condition: Condition): Promise<{ holds: boolean, seen: string }> {
  if ('routingTable' in condition) {
    const c = condition.routingTable
    const r = await ctx.roster.handle(c.node).call('getDhtRoutingTableSize', {}, { signal: ctx.signal })
    return { holds: r.peers >= c.minPeers, seen: `${r.peers} peers (${r.size} entries)` }
  }
  if ('health' in condition) {
    const s = await ctx.roster.handle(condition.health.node).call('getHealth', {}, { signal: ctx.signal })
    return { holds: s.status === condition.health.status, seen: s.status }
  }
  if ('event' in condition) {
    const c = condition.event
    const from = c.afterStep == null ? 0 : ctx.evidence.steps[c.afterStep]?.startedAt ?? 0
    const hits = ctx.evidence.events.filter(ev => ev.node === c.node && ev.type === c.type && ev.time >= from && matches(ev, c.where))
    return { holds: hits.length >= c.minCount, seen: `${hits.length} matching event(s)` }
  }
  if ('sees' in condition) {
    const c = condition.sees
    const { routingTable } = await ctx.roster.handle(c.node).call('inspect', {}, { signal: ctx.signal })
    const missing = c.peers.filter(p => !routingTable.includes(ctx.roster.node(p).peerId ?? ''))
    return { holds: missing.length === 0, seen: missing.length === 0 ? 'all seen' : `missing ${missing.join(', ')}` }
  }
  if ('reachable' in condition || 'unreachable' in condition) {
    const want = 'reachable' in condition
    const c = 'reachable' in condition ? condition.reachable : condition.unreachable
    const results = await Promise.all(c.peers.map(async p => ({ p, r: await ctx.roster.handle(c.node).call('verifyPeerReachable', { peerId: ctx.roster.node(p).peerId ?? '', fresh: true }, { signal: ctx.signal }) })))
    const wrong = results.filter(x => x.r.reachable !== want).map(x => x.p)
    return { holds: wrong.length === 0, seen: wrong.length === 0 ? `all ${want ? 'reachable' : 'unreachable'}` : `${want ? 'unreachable' : 'still reachable'}: ${wrong.join(', ')}` }
  }
  const c = condition.connected
  const inspection = await ctx.roster.handle(c.node).call('inspect', {}, { signal: ctx.signal })
  const open = new Set(inspection.connections.filter(x => x.status === 'open').map(x => x.peerId))
  const missing = c.peers.filter(p => !open.has(ctx.roster.node(p).peerId ?? ''))
  return { holds: missing.length === 0, seen: missing.length === 0 ? 'all connected' : `not connected to ${missing.join(', ')}` }
}

/** A wait's real-ms bound: its scaled timeout plus its real-time tolerance, never past the plan time itself. */
export function waitDeadlineMs (step: { timeoutMs: number, toleranceMs: number }, scaledMs: number): number {
  return Math.max(scaledMs, Math.min(scaledMs + step.toleranceMs, step.timeoutMs))
}

async function waitFor (ctx: RunContext, step: StepOf<'wait'>): Promise<void> {
  const deadlineMs = waitDeadlineMs(step, ctx.scaled(step.timeoutMs))
  const started = Date.now()
  let last = { holds: false, seen: 'not evaluated' }
  while (true) {
    last = await evaluate(ctx, step.until).catch((err: Error) => ({ holds: false, seen: err.message }))
    if (last.holds || Date.now() - started >= deadlineMs) break
    await sleep(Math.min(100, Math.max(1, deadlineMs - (Date.now() - started))), ctx.signal)
  }
  const what = JSON.stringify(step.until)
  const passed = last.holds === step.expect
  ctx.evidence.expect({
    id: `${ctx.evidence.currentStep}-wait`,
    description: step.label ?? `${step.expect ? '' : 'not: '}${what} within ${deadlineMs} ms`,
    expected: step.expect ? `holds within ${deadlineMs} ms` : `does not hold within ${deadlineMs} ms`,
    actual: last.holds ? `held after ${Date.now() - started} ms (${last.seen})` : `not after ${deadlineMs} ms (${last.seen})`,
    passed,
    planRef: step.planRef
  })
  if (!passed && step.expect) throw new ScenarioAbort(`wait did not hold: ${what} (${last.seen})`)
}

function check (ctx: RunContext, step: StepOf<'assert'>): void {
  const c: Check = step.check
  const stepStart = (index: number | undefined): number => index == null ? 0 : ctx.evidence.steps[index]?.startedAt ?? 0
  if ('event' in c) {
    const e = c.event
    const from = stepStart(e.afterStep)
    const limit = e.withinMs != null ? ctx.scaled(e.withinMs) : undefined
    const hits = ctx.evidence.events.filter(ev => ev.node === e.node && ev.type === e.type && ev.time >= from && matches(ev, e.where))
    const first = hits[0]
    const inTime = limit == null || (first != null && first.time - from <= limit + e.toleranceMs)
    ctx.evidence.expect({
      id: `${ctx.evidence.currentStep}-event-${e.node}-${e.type}`,
      description: step.label ?? `${e.node} emits ${e.type}${e.where != null ? ` ${JSON.stringify(e.where)}` : ''}${e.afterStep != null ? ` after step ${e.afterStep}` : ''}${limit != null ? ` within ${limit} ms (plan ${e.withinMs} ms)` : ''}`,
      expected: `${e.minCount}+ event(s)${limit != null ? ` within ${limit} ms${e.toleranceMs > 0 ? ` (+ ${e.toleranceMs} ms tolerance)` : ''}` : ''}`,
      actual: first == null ? 'no such event' : `${hits.length} event(s), first after ${first.time - from} ms`,
      passed: hits.length >= e.minCount && inTime,
      planRef: step.planRef
    })
    return
  }
  if ('noEvent' in c) {
    const e = c.noEvent
    const from = stepStart(e.afterStep)
    const hits = ctx.evidence.events.filter(ev => ev.node === e.node && ev.type === e.type && ev.time >= from && matches(ev, e.where))
    ctx.evidence.expect({
      id: `${ctx.evidence.currentStep}-no-event-${e.node}-${e.type}`,
      description: step.label ?? `${e.node} emits no ${e.type}${e.where != null ? ` ${JSON.stringify(e.where)}` : ''}`,
      expected: 'no such event',
      actual: hits.length === 0 ? 'none' : `${hits.length} event(s), first at +${(hits[0]?.time ?? from) - from} ms`,
      passed: hits.length === 0,
      planRef: step.planRef
    })
    return
  }
  throw new Error('"connected" checks are evaluated with a wait step')
}
