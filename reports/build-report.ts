import type { RunRecord } from '../scenarios/record.ts'
import { diffReports } from './baseline.ts'
import { computeKpis } from './kpis.ts'
import { scenarioOutcome, type ScenarioOutcome } from './outcome.ts'
import { ReportSchema, type Report, type ReportSummary } from './report-schema.ts'
import { summaryLine } from './summary.ts'

export interface BuildReportOptions {
  baseline?: Report
  /**
   * Defaults to the run's end so that the same record always gives the same report, byte for byte (CI can diff
   * artifacts, and rebuilding a report does not change it).
   */
  generatedAt?: string
}

function summarize (outcomes: readonly ScenarioOutcome[]): ReportSummary {
  const n = (o: ScenarioOutcome): number => outcomes.filter(x => x === o).length
  return { total: outcomes.length, passed: n('passed'), failed: n('failed'), error: n('error'), skipped: n('skipped'), invalid: n('invalid') }
}

export function buildReport (record: RunRecord, opts: BuildReportOptions = {}): Report {
  const scenarios = record.scenarios.map(s => ({ ...s, outcome: scenarioOutcome(s), summaryLine: summaryLine(s) }))
  const report: Report = {
    schemaVersion: 1,
    generatedAt: opts.generatedAt ?? new Date(record.run.endedAt).toISOString(),
    run: record.run,
    summary: summarize(scenarios.map(s => s.outcome)),
    kpis: computeKpis(record),
    scenarios
  }
  if (opts.baseline != null) report.baseline = diffReports(report, opts.baseline)
  return ReportSchema.parse(report)
}
