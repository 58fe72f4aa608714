import type { z } from 'zod'
import type { SweepPointSchema } from '../scenarios/record.ts'
import { kneePoint, SWEEP_KPIS, type SweepKpi } from '../sim/kpi-targets.ts'

/**
 * Sweeps: a KPI measured while one parameter (e.g. bootstrap latency) is stepped. Sweep rates are percentages
 * (0–100), like the KPIs, and are judged against the same targets.
 */

export type SweepPoint = z.infer<typeof SweepPointSchema>
export { SWEEP_KPIS, type SweepKpi }

/** The first parameter value (ascending) at which a KPI no longer meets its target. */
export interface Knee { kpi: SweepKpi, value: number, kpiValue: number }

export interface SweepSeries {
  parameter: string
  /** Sorted by the swept value. */
  points: SweepPoint[]
  knees: Knee[]
}

function kneeOf (kpi: SweepKpi, points: readonly SweepPoint[]): Knee | undefined {
  const p = kneePoint(points, [kpi])
  return p == null ? undefined : { kpi, value: p.value, kpiValue: p[kpi]! }
}

/** One series per swept parameter, in order of first appearance. */
export function sweepSeries (points: readonly SweepPoint[]): SweepSeries[] {
  const parameters = [...new Set(points.map(p => p.parameter))]
  return parameters.map(parameter => {
    const sorted = points.filter(p => p.parameter === parameter).sort((a, b) => a.value - b.value)
    const knees = SWEEP_KPIS.map(kpi => kneeOf(kpi, sorted)).filter((k): k is Knee => k !== undefined)
    return { parameter, points: sorted, knees }
  })
}
