import { describe, expect, it } from 'vitest'
import { FIXTURE_EXPECTED, fixtureRunRecord, makeRun, makeScenario, T0 } from './fixtures.ts'
import { buildReport } from './build-report.ts'
import { ReportSchema } from './report-schema.ts'
import { runSummary, summaryLine } from './summary.ts'

describe('buildReport', () => {
  const record = fixtureRunRecord()
  const report = buildReport(record)

  it('validates against ReportSchema, also after a JSON round trip', () => {
    expect(ReportSchema.safeParse(report).success).toBe(true)
    expect(ReportSchema.parse(JSON.parse(JSON.stringify(report)))).toEqual(report)
  })

  it('counts outcomes, with invalid taking precedence over the recorded status', () => {
    expect(report.summary).toEqual(FIXTURE_EXPECTED.summary)
    const bypass = report.scenarios.find(s => s.name === 'fault-bypass-check')
    expect(bypass).toMatchObject({ status: 'passed', outcome: 'invalid' })
  })

  it('keeps the run and every scenario (events included), each with a summary line', () => {
    expect(report.run).toEqual(record.run)
    expect(report.scenarios.map(s => s.name)).toEqual(record.scenarios.map(s => s.name))
    report.scenarios.forEach((s, i) => {
      expect(s.events).toEqual(record.scenarios[i]?.events)
      expect(s.summaryLine).toBe(summaryLine(s))
    })
  })

  it('is a pure function of the record: same record, same report', () => {
    expect(JSON.stringify(buildReport(fixtureRunRecord()))).toBe(JSON.stringify(report))
    expect(report.generatedAt).toBe(new Date(record.run.endedAt).toISOString())
    expect(buildReport(record, { generatedAt: '2030-01-01T00:00:00.000Z' }).generatedAt).toBe('2030-01-01T00:00:00.000Z')
  })

  it('the schema rejects a report whose summary disagrees with its scenarios', () => {
    const bad = { ...report, summary: { ...report.summary, total: 99 } }
    const result = ReportSchema.safeParse(bad)
    expect(result.success).toBe(false)
    expect(result.error?.issues[0]?.path).toEqual(['summary', 'total'])
  })
})

describe('summaryLine', () => {
  const assertion = (id: string, passed: boolean) => ({ id, description: id, expected: 'peerB within 15s', actual: 'missing', passed, at: T0 })
  const scenario = (fields: Parameters<typeof makeScenario>[1]) => makeRun([makeScenario('plan-3-bidirectional-discovery', fields)]).scenarios[0]!

  it('passed: symbol, name, outcome, duration, assertions', () => {
    const s = scenario({ durationMs: 4_200, assertions: Array.from({ length: 12 }, (_, i) => assertion(`a${i}`, true)) })
    expect(summaryLine(s)).toBe('✔ plan-3-bidirectional-discovery  passed  4.2s  12/12 assertions')
  })

  it('failed: names the first failing assertion with expected and actual', () => {
    const s = scenario({ status: 'failed', durationMs: 4_200, assertions: [assertion('ok', true), assertion('bidirectional-a-b', false), assertion('later', false)] })
    expect(summaryLine(s)).toBe('✘ plan-3-bidirectional-discovery  failed  4.2s  1/3 assertions  bidirectional-a-b: expected peerB within 15s, actual missing')
  })

  it('error, skipped and invalid say why', () => {
    expect(summaryLine(scenario({ status: 'error', durationMs: 300, reason: 'docker daemon not reachable' })))
      .toBe('✘ plan-3-bidirectional-discovery  error  0.3s  0/0 assertions  docker daemon not reachable')
    expect(summaryLine(scenario({ status: 'skipped', reason: 'needs process or docker mode' })))
      .toBe('○ plan-3-bidirectional-discovery  skipped  needs process or docker mode')
    expect(summaryLine(scenario({ status: 'passed', durationMs: 2_000, invalid: 'proxy bypassed' })))
      .toBe('⚠ plan-3-bidirectional-discovery  invalid  2.0s  0/0 assertions  proxy bypassed')
  })

  it('falls back to the first failed step when no assertion failed', () => {
    const s = scenario({ status: 'failed', steps: [{ index: 2, kind: 'kill', label: 'kill boot', startedAt: T0, endedAt: T0, ok: false, error: 'no such node', targets: [] }] })
    expect(summaryLine(s)).toMatch(/step 2 \(kill boot\): no such node$/)
  })
})

describe('runSummary', () => {
  it('lists problems first, then the KPIs against their targets', () => {
    const text = runSummary(buildReport(fixtureRunRecord()))
    const lines = text.split('\n')
    expect(lines[1]).toBe('8 scenarios: 4 passed, 1 failed, 1 error, 1 skipped, 1 invalid')
    expect(lines[2]).toMatch(/^ {2}✘ plan-3-bidirectional-discovery/)
    expect(text).toContain('✘ Connection success rate: 90 % (target > 95 %, 10 samples, not met)')
    expect(text).toContain('✔ Time to failure detection: 31.0s (target < 60.0s, 1 sample, met)')
  })
})
