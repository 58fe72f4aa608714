import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { RunRecord } from '../scenarios/record.ts'
import { diffReports } from './baseline.ts'
import { buildReport } from './build-report.ts'
import { ReportSchema, type Report } from './report-schema.ts'
import { htmlReporter, JUNIT_XML, jsonReporter, junitReporter, REPORT_HTML, REPORT_JSON, runReporters, type Reporter } from './reporter.ts'

/** Reading report.json, and writing the reports of a run through the reporters (reporter.ts does the writing). */

/** A report file that is not JSON or not a valid report; the message names the file and the offending fields. */
export class ReportFileError extends Error {
  readonly file: string
  constructor (file: string, message: string, options?: ErrorOptions) {
    super(`${file}: ${message}`, options)
    this.name = 'ReportFileError'
    this.file = file
  }
}

export async function readReport (file: string): Promise<Report> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch (cause) {
    throw new ReportFileError(file, `cannot read a report: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
  const parsed = ReportSchema.safeParse(json)
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map(i => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    const more = parsed.error.issues.length > issues.length ? ` (and ${parsed.error.issues.length - issues.length} more)` : ''
    throw new ReportFileError(file, `not a valid chiral-sim report — ${issues.join('; ')}${more}`, { cause: parsed.error })
  }
  return parsed.data
}

export interface WriteReportsOptions {
  baseline?: Report
  /** true (the default) writes dir/junit.xml, a string writes to that path, false writes none. */
  junit?: boolean | string
  /** More reporters (the markdown summary, a user's), run after the built-in ones. */
  reporters?: readonly Reporter[]
}

export interface WrittenReports {
  jsonPath: string
  htmlPath: string
  junitPath?: string
  /** Every file written, the extra reporters' included. */
  files: string[]
}

/**
 * report.json and report.html always (report.json is what `chiral-sim report` rebuilds from), JUnit unless turned
 * off, then the extra reporters. A reporter's failure is thrown after all others ran (ReporterError).
 */
export async function writeReports (record: RunRecord, dir: string, opts: WriteReportsOptions = {}): Promise<WrittenReports> {
  const report = buildReport(record, opts.baseline !== undefined ? { baseline: opts.baseline } : {})
  const junit = opts.junit ?? true
  const junitPath = junit === false ? undefined : typeof junit === 'string' ? resolve(junit) : resolve(dir, JUNIT_XML)
  const files = await runReporters([
    jsonReporter(), htmlReporter(), ...(junitPath !== undefined ? [junitReporter(junitPath)] : []), ...(opts.reporters ?? [])
  ], report, dir)
  return { jsonPath: join(dir, REPORT_JSON), htmlPath: join(dir, REPORT_HTML), ...(junitPath !== undefined ? { junitPath } : {}), files }
}

/**
 * Re-renders report.html, and runs any extra reporters, from report.json (after a reporter change, to compare with
 * another baseline, or for a format added later) without re-running anything. With a baseline, the diff in
 * report.json is replaced too.
 */
export async function rebuildReports (dir: string, opts: { baseline?: Report, reporters?: readonly Reporter[] } = {}): Promise<WrittenReports> {
  const jsonPath = join(dir, REPORT_JSON)
  const htmlPath = join(dir, REPORT_HTML)
  let report = await readReport(jsonPath)
  if (opts.baseline !== undefined) report = ReportSchema.parse({ ...report, baseline: diffReports(report, opts.baseline) })
  const files = await runReporters([...(opts.baseline !== undefined ? [jsonReporter()] : []), htmlReporter(), ...(opts.reporters ?? [])], report, dir)
  return { jsonPath, htmlPath, files }
}
