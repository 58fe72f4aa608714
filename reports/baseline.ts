import { KPI_IDS, worseBy, type Kpi, type KpiUnit } from './kpis.ts'
import { isProblem, type ScenarioOutcome } from './outcome.ts'
import type { BaselineDiff, KpiDiff, Report, ScenarioChange } from './report-schema.ts'

/**
 * The current run against a baseline report: what a release manager reads to decide whether a change made
 * things worse. Regressions come first in every list.
 */

/**
 * How much worse a KPI may get before it is a regression. Run-to-run noise: one attempt in a few dozen moves a
 * rate by a few tenths of a point, and detection time depends on where in the health-check interval a failure
 * lands.
 */
export const KPI_TOLERANCE: Record<KpiUnit, number> = { '%': 0.5, ms: 5_000 }

function diffKpi (before: Kpi, after: Kpi): KpiDiff {
  const base = {
    id: after.id, name: after.name, unit: after.unit, before: before.value, after: after.value,
    metBefore: before.met, metAfter: after.met
  }
  if (before.value === null || after.value === null) {
    const note = before.value === after.value ? 'not measured' : after.value === null ? 'no longer measured' : 'newly measured'
    return { ...base, delta: null, regression: false, note }
  }
  const delta = after.value - before.value
  const worse = worseBy(after.comparator, before.value, after.value)
  if (before.met === true && after.met === false) return { ...base, delta, regression: true, note: 'met → not met' }
  if (worse > KPI_TOLERANCE[after.unit]) return { ...base, delta, regression: true, note: 'worse beyond tolerance' }
  if (before.met === false && after.met === true) return { ...base, delta, regression: false, note: 'not met → met' }
  const note = worse < -KPI_TOLERANCE[after.unit] ? 'better' : 'within tolerance'
  return { ...base, delta, regression: false, note }
}

function classify (before: ScenarioOutcome | null, after: ScenarioOutcome | null): ScenarioChange {
  if (before === null) return 'new'
  if (after === null) return 'removed'
  if (before === after) return 'unchanged'
  if (before === 'passed' && isProblem(after)) return 'regression'
  if (isProblem(before) && after === 'passed') return 'fixed'
  return 'changed'
}

const regressionsFirst = <T extends { regression: boolean }>(items: T[]): T[] =>
  [...items].sort((a, b) => Number(b.regression) - Number(a.regression))

export function diffReports (current: Report, baseline: Report): BaselineDiff {
  const kpis = regressionsFirst(KPI_IDS.map(id => diffKpi(baseline.kpis[id], current.kpis[id])))
  const before = new Map(baseline.scenarios.map(s => [s.name, s.outcome]))
  const after = new Map(current.scenarios.map(s => [s.name, s.outcome]))
  const names = [...new Set([...after.keys(), ...before.keys()])]
  const scenarios = regressionsFirst(names.map(name => {
    const change = classify(before.get(name) ?? null, after.get(name) ?? null)
    return { name, before: before.get(name) ?? null, after: after.get(name) ?? null, change, regression: change === 'regression' }
  }))
  return {
    baseline: { runId: baseline.run.id, generatedAt: baseline.generatedAt, mode: baseline.run.mode, seed: baseline.run.seed },
    regressions: [...kpis, ...scenarios].filter(d => d.regression).length,
    kpis,
    scenarios
  }
}
