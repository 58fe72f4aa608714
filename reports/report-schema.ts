import { z } from 'zod'
import { RunRecordSchema, ScenarioRecordSchema } from '../scenarios/record.ts'
import { KpiIdSchema, KpisSchema, KpiUnitSchema } from './kpis.ts'
import { ScenarioOutcomeSchema } from './outcome.ts'

/**
 * report.json: the RunRecord plus everything derived from it. It carries the full scenarios (events included)
 * so that report.html can be rebuilt from report.json alone.
 */

/**
 * The current run against a baseline report (baseline.ts computes it): what a release manager reads to decide
 * whether a change made things worse. Regressions come first in every list.
 */
export const KpiDiffSchema = z.object({
  id: KpiIdSchema,
  name: z.string(),
  unit: KpiUnitSchema,
  before: z.number().nullable(),
  after: z.number().nullable(),
  /** after − before, in the KPI's unit; null when either side was not measured. */
  delta: z.number().nullable(),
  metBefore: z.boolean().nullable(),
  metAfter: z.boolean().nullable(),
  regression: z.boolean(),
  note: z.string()
})
export type KpiDiff = z.infer<typeof KpiDiffSchema>

export const ScenarioChangeSchema = z.enum(['regression', 'fixed', 'new', 'removed', 'changed', 'unchanged'])
export type ScenarioChange = z.infer<typeof ScenarioChangeSchema>

export const ScenarioDiffSchema = z.object({
  name: z.string(),
  before: ScenarioOutcomeSchema.nullable(),
  after: ScenarioOutcomeSchema.nullable(),
  change: ScenarioChangeSchema,
  regression: z.boolean()
})
export type ScenarioDiff = z.infer<typeof ScenarioDiffSchema>

export const BaselineDiffSchema = z.object({
  baseline: z.object({ runId: z.string(), generatedAt: z.string(), mode: z.string(), seed: z.number().int() }),
  regressions: z.number().int().min(0),
  kpis: z.array(KpiDiffSchema),
  scenarios: z.array(ScenarioDiffSchema)
})
export type BaselineDiff = z.infer<typeof BaselineDiffSchema>

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
