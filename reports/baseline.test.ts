import { describe, expect, it } from 'vitest'
import { RunRecordSchema, type RunRecord } from '../scenarios/record.ts'
import { diffReports, KPI_TOLERANCE } from './baseline.ts'
import { fixtureRunRecord, makeScenario, T0 } from './fixtures.ts'
import { buildReport } from './build-report.ts'
import { ReportSchema, type Report } from './report-schema.ts'

/** The fixture as it looked before: plan-3 passed, every connection succeeded, docker-smoke did not exist yet. */
function baselineRecord (): RunRecord {
  const record = structuredClone(fixtureRunRecord())
  record.run.id = 'run-baseline'
  record.scenarios = record.scenarios.filter(s => s.name !== 'docker-smoke')
  for (const s of record.scenarios) {
    if (s.name === 'plan-3-bidirectional-discovery') {
      s.status = 'passed'
      s.assertions = s.assertions.map(a => ({ ...a, passed: true }))
    }
    if (!s.tags.includes('expected-failure')) {
      // The baseline connected every time: its connect outcomes were all successes.
      s.events = s.events.map(e => e.type === 'connect:result' ? { ...e, outcome: 'success' } : e.type === 'connect:done' ? { ...e, success: true } : e)
    }
  }
  record.scenarios.push(RunRecordSchema.shape.scenarios.element.parse(makeScenario('retired-scenario', { startedAt: T0 })))
  return record
}

describe('diffReports', () => {
  const current = buildReport(fixtureRunRecord())
  const baseline = buildReport(baselineRecord())
  const diff = diffReports(current, baseline)

  it('names the baseline it compares with', () => {
    expect(diff.baseline).toMatchObject({ runId: 'run-baseline', mode: 'memory', seed: 42 })
  })

  it('lists regressions first: a KPI that went from met to not met', () => {
    expect(diff.kpis[0]).toMatchObject({ id: 'connectionSuccessRate', before: 100, after: 90, delta: -10, metBefore: true, metAfter: false, regression: true, note: 'met → not met' })
    const firstNonRegression = diff.kpis.findIndex(k => !k.regression)
    expect(diff.kpis.slice(firstNonRegression).every(k => !k.regression)).toBe(true)
  })

  it('lists regressions first: a scenario that went from passed to failed; new and removed scenarios are named', () => {
    expect(diff.scenarios[0]).toMatchObject({ name: 'plan-3-bidirectional-discovery', before: 'passed', after: 'failed', change: 'regression', regression: true })
    expect(diff.scenarios.find(s => s.name === 'docker-smoke')).toMatchObject({ before: null, after: 'error', change: 'new', regression: false })
    expect(diff.scenarios.find(s => s.name === 'retired-scenario')).toMatchObject({ before: 'passed', after: null, change: 'removed', regression: false })
    expect(diff.scenarios.find(s => s.name === 'plan-1-normal-connection')).toMatchObject({ change: 'unchanged', regression: false })
  })

  it('counts every regression', () => {
    expect(diff.regressions).toBe(diff.kpis.filter(k => k.regression).length + diff.scenarios.filter(s => s.regression).length)
    expect(diff.regressions).toBe(3) // connection rate, discovery rate (beyond tolerance), plan-3
  })

  it('the reverse direction is a fix, not a regression', () => {
    const back = diffReports(baseline, current)
    expect(back.scenarios.find(s => s.name === 'plan-3-bidirectional-discovery')).toMatchObject({ change: 'fixed', regression: false })
    expect(back.kpis.find(k => k.id === 'connectionSuccessRate')).toMatchObject({ regression: false, note: 'not met → met' })
  })

  it('ignores a worsening within the tolerance, flags one beyond it', () => {
    const withKpi = (report: Report, value: number): Report => ({
      ...report, kpis: { ...report.kpis, timeToFailureDetectionMs: { ...report.kpis.timeToFailureDetectionMs, value, met: value < 60_000 } }
    })
    const slower = (ms: number) => diffReports(withKpi(current, 30_000 + ms), withKpi(current, 30_000)).kpis.find(k => k.id === 'timeToFailureDetectionMs')
    expect(slower(KPI_TOLERANCE.ms - 1)).toMatchObject({ regression: false, note: 'within tolerance' })
    expect(slower(KPI_TOLERANCE.ms + 1)).toMatchObject({ regression: true, note: 'worse beyond tolerance' })
    expect(slower(-10_000)).toMatchObject({ regression: false, note: 'better' })
  })

  it('a KPI that is no longer measured is reported, not counted as a regression', () => {
    const unmeasured: Report = { ...current, kpis: { ...current.kpis, autoRecoveryRate: { ...current.kpis.autoRecoveryRate, value: null, met: null, samples: 0 } } }
    expect(diffReports(unmeasured, current).kpis.find(k => k.id === 'autoRecoveryRate')).toMatchObject({ after: null, delta: null, regression: false, note: 'no longer measured' })
  })

  it('buildReport embeds the diff and the result still validates', () => {
    const report = buildReport(fixtureRunRecord(), { baseline })
    expect(report.baseline).toEqual(diff)
    expect(ReportSchema.safeParse(report).success).toBe(true)
  })
})
