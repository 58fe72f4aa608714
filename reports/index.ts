/**
 * @packageDocumentation
 *
 * Pure functions of the run record (scenarios/record.ts): nothing here re-measures or reaches a node. `buildReport`
 * makes report.json's content (the record, each scenario's outcome and summary line, the plan's KPIs, a baseline
 * diff); `toHtml`, `toJUnitXml` and `markdownSummary` render it; `writeReports` writes report.json, report.html and
 * junit.xml plus any `Reporter` (built-in or a user's module) to a folder, and `rebuildReports` redoes them from a
 * report.json alone.
 *
 * @example
 * ```ts
 * import { buildReport, readReport, runSummary, writeReports } from 'chiral-sim/reports'
 *
 * const baseline = await readReport('last-release/report.json')
 * const { htmlPath } = await writeReports(record, 'chiral-report', { baseline })
 * console.log(runSummary(buildReport(record, { baseline })))   // regressions first
 * ```
 */
export { computeKpis, describeKpi, formatKpiValue, formatTarget, meets, KPI_DEFINITIONS, KPI_IDS, KpiIdSchema, KpiSchema, KpisSchema } from './kpis.ts'
export type { Comparator, Kpi, KpiDefinition, KpiId, KpiUnit, Kpis } from './kpis.ts'
export { buildReport } from './build-report.ts'
export type { BuildReportOptions } from './build-report.ts'
export { BaselineDiffSchema, ReportSchema, ReportScenarioSchema, ReportSummarySchema } from './report-schema.ts'
export type { BaselineDiff, KpiDiff, Report, ReportScenario, ReportSummary, ScenarioChange, ScenarioDiff } from './report-schema.ts'
export { diffReports, KPI_TOLERANCE } from './baseline.ts'
export { scenarioOutcome, ScenarioOutcomeSchema } from './outcome.ts'
export type { ScenarioOutcome } from './outcome.ts'
export { runSummary, summaryLine } from './summary.ts'
export { toJUnitXml } from './junit.ts'
export { EVENT_TABLE_LIMIT, toHtml } from './html.ts'
export { sweepSeries } from './sweep.ts'
export type { Knee, SweepSeries } from './sweep.ts'
export { readReport, rebuildReports, ReportFileError, writeReports } from './write.ts'
export { BUILTIN_REPORTERS, htmlReporter, jsonReporter, junitReporter, loadReporter, ReporterError, runReporters, summaryReporter, JUNIT_XML, REPORT_HTML, REPORT_JSON } from './reporter.ts'
export type { Reporter, ReporterContext, ReporterModuleExport, ReporterOptions, SummaryReporterOptions } from './reporter.ts'
export { interopMatrix, markdownCell, markdownSummary, markdownTable } from './markdown.ts'
export type { MarkdownSummaryOptions, SummarySection } from './markdown.ts'
export type { WriteReportsOptions, WrittenReports } from './write.ts'
