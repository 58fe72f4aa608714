import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { RunRecord } from '../sim/record.ts'
import { diffReports } from './baseline.ts'
import { toHtml } from './html.ts'
import { toJUnitXml } from './junit.ts'
import { buildReport, ReportSchema, type Report } from './report-schema.ts'

/** The only module of reports/ that touches the file system. */

export const REPORT_JSON = 'report.json'
export const REPORT_HTML = 'report.html'
export const JUNIT_XML = 'junit.xml'

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

const json = (report: Report): string => `${JSON.stringify(report, null, 2)}\n`

export interface WriteReportsOptions {
  baseline?: Report
  /** true (the default) writes dir/junit.xml, a string writes to that path, false writes none. */
  junit?: boolean | string
}

export interface WrittenReports { jsonPath: string, htmlPath: string, junitPath?: string }

export async function writeReports (record: RunRecord, dir: string, opts: WriteReportsOptions = {}): Promise<WrittenReports> {
  const report = buildReport(record, opts.baseline !== undefined ? { baseline: opts.baseline } : {})
  await mkdir(dir, { recursive: true })
  const jsonPath = join(dir, REPORT_JSON)
  const htmlPath = join(dir, REPORT_HTML)
  await writeFile(jsonPath, json(report))
  await writeFile(htmlPath, toHtml(report))
  const junit = opts.junit ?? true
  if (junit === false) return { jsonPath, htmlPath }
  const junitPath = typeof junit === 'string' ? resolve(junit) : join(dir, JUNIT_XML)
  await mkdir(dirname(junitPath), { recursive: true })
  await writeFile(junitPath, toJUnitXml(report))
  return { jsonPath, htmlPath, junitPath }
}

/**
 * Re-renders report.html from report.json (after a reporter change, or to compare with another baseline) without
 * re-running anything. With a baseline, the diff in report.json is replaced too.
 */
export async function rebuildReports (dir: string, opts: { baseline?: Report } = {}): Promise<WrittenReports> {
  const jsonPath = join(dir, REPORT_JSON)
  const htmlPath = join(dir, REPORT_HTML)
  let report = await readReport(jsonPath)
  if (opts.baseline !== undefined) {
    report = ReportSchema.parse({ ...report, baseline: diffReports(report, opts.baseline) })
    await writeFile(jsonPath, json(report))
  }
  await writeFile(htmlPath, toHtml(report))
  return { jsonPath, htmlPath }
}
