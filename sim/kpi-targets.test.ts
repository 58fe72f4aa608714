import { describe, expect, it } from 'vitest'
import { kneePoint, meetsTarget } from './kpi-targets.ts'
import { sweepSeries } from '../reports/sweep.ts'

const point = (value: number, connectionSuccessRate: number | null, discoverySuccessRate: number | null = null) =>
  ({ parameter: 'latency', value, connectionSuccessRate, discoverySuccessRate, samples: 10 })

describe('KPI targets: one rule for the runner and the reports', () => {
  it('exactly 95 % connection success misses the plan\'s "> 95 %"; 100 % discovery meets ">= 100 %"', () => {
    expect(meetsTarget('connectionSuccessRate', 95)).toBe(false)
    expect(meetsTarget('connectionSuccessRate', 95.01)).toBe(true)
    expect(meetsTarget('discoverySuccessRate', 100)).toBe(true)
    expect(meetsTarget('timeToFailureDetectionMs', 60_000)).toBe(false)
  })

  it('the sweep knee is the first value missing a target, the same in the runner and in the report', () => {
    // Before: the runner's knee treated exactly 95 % as meeting the target, the report as missing it.
    const points = [point(0, 100, 100), point(200, 95, 100), point(400, 80, 50)]
    expect(kneePoint(points)?.value).toBe(200)
    expect(sweepSeries(points)[0]!.knees.map(k => k.value)).toEqual([200, 400])
    expect(kneePoint([point(0, 100), point(1, null, null)])).toBeUndefined()
  })
})
