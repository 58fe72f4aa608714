import { z } from 'zod'

/**
 * The plan's KPI targets ("Success Metrics & KPIs") and the one rule for judging a value against them. The runner
 * (a sweep's knee) and the reports (the KPIs, the sweep charts) both judge with `meetsTarget`, so "exactly 95 %"
 * cannot be a pass in one place and a miss in another: the plan says "> 95 %", so 95 % misses.
 */
export const KpiIdSchema = z.enum([
  'connectionSuccessRate', 'timeToFailureDetectionMs', 'bootstrapAvailability', 'discoverySuccessRate', 'autoRecoveryRate'
])
export type KpiId = z.infer<typeof KpiIdSchema>

export const ComparatorSchema = z.enum(['>', '>=', '<', '<='])
export type Comparator = z.infer<typeof ComparatorSchema>

export const KpiUnitSchema = z.enum(['%', 'ms'])
export type KpiUnit = z.infer<typeof KpiUnitSchema>

export interface KpiDefinition { name: string, unit: KpiUnit, target: number, comparator: Comparator, baseline?: number | undefined }

/** Targets and baselines as the plan states them ("Post-Implementation Targets", "Pre-Implementation Baseline"). */
export const KPI_DEFINITIONS: Record<KpiId, KpiDefinition> = {
  connectionSuccessRate: { name: 'Connection success rate', unit: '%', target: 95, comparator: '>', baseline: 70 },
  // The plan's baseline here is "infinite (hangs forever)", which has no number.
  timeToFailureDetectionMs: { name: 'Time to failure detection', unit: 'ms', target: 60_000, comparator: '<' },
  bootstrapAvailability: { name: 'Bootstrap availability', unit: '%', target: 99.9, comparator: '>', baseline: 95 },
  discoverySuccessRate: { name: 'Peer discovery success rate', unit: '%', target: 100, comparator: '>=' },
  autoRecoveryRate: { name: 'Auto-recovery effectiveness', unit: '%', target: 90, comparator: '>' }
}

export function meets (value: number, target: number, comparator: Comparator): boolean {
  switch (comparator) {
    case '>': return value > target
    case '>=': return value >= target
    case '<': return value < target
    case '<=': return value <= target
  }
}

/** Whether `value` meets the plan's target for `kpi`. */
export function meetsTarget (kpi: KpiId, value: number): boolean {
  const { target, comparator } = KPI_DEFINITIONS[kpi]
  return meets(value, target, comparator)
}

/** The KPIs a sweep measures at each value (rates in %, null = no sample at that value). */
export const SWEEP_KPIS = ['connectionSuccessRate', 'discoverySuccessRate'] as const
export type SweepKpi = typeof SWEEP_KPIS[number]

/** The first point (in the order given) at which a sweep KPI misses its target: the sweep's knee. */
export function kneePoint<P extends Record<SweepKpi, number | null>> (points: readonly P[], kpis: readonly SweepKpi[] = SWEEP_KPIS): P | undefined {
  return points.find(p => kpis.some(k => p[k] !== null && !meetsTarget(k, p[k])))
}
