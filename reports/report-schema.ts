import { z } from 'zod'
import { RunRecordSchema, ScenarioRecordSchema, type RunRecord } from '../sim/record.ts'
import { BaselineDiffSchema, diffReports } from './baseline.ts'
import { computeKpis, KpisSchema } from './kpis.ts'
import { scenarioOutcome, ScenarioOutcomeSchema, type ScenarioOutcome } from './outcome.ts'
import { summaryLine } from './summary.ts'

/**
 * report.json: the RunRecord plus everything derived from it. It carries the full scenarios (events included)
 * so that report.html can be rebuilt from report.json alone.
 */

export const ReportScenarioSchema = ScenarioRecordSchema.extend({
  outcome: ScenarioOutcomeSchema,
  summaryLine: z.string()
})
export type ReportScenario = z.infer<typeof ReportScenarioSchema>

export const ReportSummarySchema = z.object({
  total: z.number().int().min(0),
  passed: z.number().int().min(0),
  failed: z.number().int().min(0),
  error: z.number().int().min(0),
  skipped: z.number().int().min(0),
  invalid: z.number().int().min(0)
})
export type ReportSummary = z.infer<typeof ReportSummarySchema>

export const ReportSchema = z.object({
  schemaVersion: z.literal(1),
  generatedAt: z.iso.datetime(),
  run: RunRecordSchema.shape.run,
  summary: ReportSummarySchema,
  kpis: KpisSchema,
  scenarios: z.array(ReportScenarioSchema),
  baseline: BaselineDiffSchema.optional()
}).refine(r => r.summary.total === r.scenarios.length, { message: 'summary.total must equal the number of scenarios', path: ['summary', 'total'] })
export type Report = z.infer<typeof ReportSchema>

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
