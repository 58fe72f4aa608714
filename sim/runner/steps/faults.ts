import { describeError } from '../../../nodes/util.ts'
import { parseToxicSpec, toxicAttributes, type ToxicSpecInput } from '../../../scenarios/toxic-spec.ts'
import type { Link } from '../../faults/link-proxies.ts'
import { kneePoint } from '../../kpi-targets.ts'
import type { RunContext } from '../context.ts'
import { resolveLinks } from '../link-wiring.ts'
import type { ExecuteStep, StepHandlers, StepOf } from './handler.ts'

/** fault, heal, sweep: Toxiproxy faults on the run's links (link-wiring.ts made them), as steps. */
export const faultSteps: StepHandlers<'fault' | 'heal' | 'sweep'> = {
  fault: async (ctx, step) => await applyFault(ctx, step),
  heal: async (ctx, step) => { await heal(ctx, step.faults) },
  sweep: async (ctx, step, _refs, execute) => await sweep(ctx, step, execute)
}

async function applyFault (ctx: RunContext, step: StepOf<'fault'>): Promise<string[]> {
  const links = resolveLinks(ctx, step.target)
  const name = step.as ?? `fault-${ctx.evidence.currentStep}`
  if (ctx.faultState.active.has(name)) throw new Error(`a fault named "${name}" is already active; heal it first or use another "as"`)
  const applied: Array<{ link: Link, toxic?: string, record: number }> = []
  for (const { name: ln, link } of links) {
    let toxic: string | undefined
    if (step.down === true) await link.setEnabled(false)
    else toxic = await link.addToxic(step.toxic as ToxicSpecInput)
    ctx.evidence.faults.push({
      step: ctx.evidence.currentStep,
      link: ln,
      kind: step.down === true ? 'down' : step.toxic!.type,
      attributes: step.down === true ? { enabled: false } : toxicAttributes(parseToxicSpec(step.toxic)),
      appliedAt: Date.now(),
      removedAt: null
    })
    applied.push({ link, ...(toxic != null ? { toxic } : {}), record: ctx.evidence.faults.length - 1 })
  }
  ctx.faultState.active.set(name, applied)
  if (step.durationMs != null) {
    const timer = setTimeout(() => { void heal(ctx, [name]).catch(() => {}) }, ctx.scaled(step.durationMs))
    ctx.faultState.timers.add(timer)
  }
  return links.map(l => l.name)
}

async function heal (ctx: RunContext, names?: string[]): Promise<void> {
  for (const name of names ?? [...ctx.faultState.active.keys()]) {
    const applied = ctx.faultState.active.get(name)
    if (applied == null) throw new Error(`no active fault named "${name}"; active: ${[...ctx.faultState.active.keys()].join(', ') || 'none'}`)
    ctx.faultState.active.delete(name)
    for (const a of applied) {
      if (a.toxic != null) await a.link.removeToxic(a.toxic)
      else await a.link.setEnabled(true)
      const rec = ctx.evidence.faults[a.record]
      if (rec != null) rec.removedAt = Date.now()
    }
  }
}

/** Success percentages of the connect and discovery outcomes the nodes reported within a time window. */
function windowRates (ctx: RunContext, from: number, to: number): { connection: number | null, discovery: number | null, samples: number } {
  const inWindow = ctx.evidence.events.filter(e => e.time >= from && e.time <= to)
  const connects = inWindow.filter(e => e.type === 'connect:result')
  const discoveries = inWindow.filter(e => e.type === 'discovery:status')
  const pct = (ok: number, n: number): number | null => n === 0 ? null : Math.round(ok / n * 10_000) / 100
  return {
    connection: pct(connects.filter(e => 'outcome' in e && e.outcome === 'success').length, connects.length),
    discovery: pct(discoveries.filter(e => 'status' in e && e.status.overall === 'verified').length, discoveries.length),
    samples: connects.length + discoveries.length
  }
}

async function sweep (ctx: RunContext, step: StepOf<'sweep'>, execute: ExecuteStep): Promise<string[]> {
  const links = resolveLinks(ctx, step.target)
  const outer = ctx.evidence.currentStep
  for (const value of step.values) {
    const spec = parseToxicSpec({ ...step.toxic, [step.parameter]: value })
    const toxics = await Promise.all(links.map(async l => ({ link: l.link, name: await l.link.addToxic(spec) })))
    ctx.evidence.faults.push(...links.map(l => ({ step: outer, link: l.name, kind: spec.type, attributes: { [step.parameter]: value }, appliedAt: Date.now(), removedAt: null as number | null })))
    const from = Date.now()
    const kept = ctx.evidence.assertions.length
    try {
      for (const inner of step.steps) await execute(ctx, inner)
    } catch (err) {
      // A step that breaks at a harsh value is a measurement (the point's rates show it), not a harness error.
      ctx.evidence.events.push({ seq: 0, time: Date.now(), node: 'harness', type: 'log', level: 'warn', message: `sweep ${step.parameter}=${value}: ${describeError(err)}` })
    } finally {
      // Checks inside a sweep measure; the sweep's own expectation decides pass or fail.
      ctx.evidence.assertions.splice(kept)
      ctx.evidence.currentStep = outer
      // Toxiproxy 2.12 cannot remove a toxic that still holds data for a connection its client already closed
      // (the toxic blocks delivering it, and removal waits for the toxic). That happens exactly at the harsh end of
      // a sweep, so the last value stays applied and goes with the proxy at teardown.
      if (value !== step.values.at(-1)) {
        await Promise.all(toxics.map(async t => { await t.link.removeToxic(t.name) }))
        for (const f of ctx.evidence.faults) if (f.step === outer && f.removedAt == null) f.removedAt = Date.now()
      }
    }
    const rates = windowRates(ctx, from, Date.now())
    ctx.evidence.sweep.push({ parameter: step.parameter, value, connectionSuccessRate: rates.connection, discoverySuccessRate: rates.discovery, samples: rates.samples })
  }
  const points = ctx.evidence.sweep.filter(p => p.parameter === step.parameter)
  const knee = kneePoint(points)?.value
  ctx.evidence.expect({
    id: `${outer}-sweep-measured`,
    description: `the sweep of ${step.parameter} measured every value`,
    expected: `${step.values.length} points with samples`,
    actual: `${points.filter(p => p.samples > 0).length} points with samples`,
    passed: points.length === step.values.length && points.every(p => p.samples > 0),
    planRef: step.planRef
  })
  if (step.expect?.kneeAbove != null) {
    ctx.evidence.expect({
      id: `${outer}-sweep-knee`,
      description: `discovery and connection hold their targets up to ${step.parameter} = ${step.expect.kneeAbove}`,
      expected: `knee above ${step.expect.kneeAbove}`,
      actual: knee == null ? 'no knee in the swept range' : `knee at ${knee}`,
      passed: knee == null || knee > step.expect.kneeAbove,
      planRef: step.planRef
    })
  }
  return links.map(l => l.name)
}
