import { appendFile, mkdir, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { toHtml } from './html.ts'
import { toJUnitXml } from './junit.ts'
import { markdownSummary, type MarkdownSummaryOptions } from './markdown.ts'
import type { Report } from './report-schema.ts'

/**
 * Reporters: plug-ins over the finished run, as in Playwright. Each gets the report (the run record plus what is
 * derived from it: outcomes, KPIs, baseline diff) and writes whatever format it likes. The built-in formats are
 * reporters too, so a user's format is a peer of report.html, not a patch to the runner:
 *
 *   // my-reporter.ts — chiral-sim run --reporter ./my-reporter.ts
 *   import type { Reporter } from '<chiral-sim checkout>/reports/index.ts'
 *   export default {
 *     name: 'failures-csv',
 *     async onRunEnd (report, { outputDir, writeFile }) {
 *       const rows = report.scenarios.filter(s => s.outcome !== 'passed').map(s => `${s.name},${s.outcome}`)
 *       return [await writeFile('failures.csv', rows.join('\n'))]
 *     }
 *   } satisfies Reporter
 */

export interface ReporterContext {
  /** The run's report folder (--report-dir). */
  readonly outputDir: string
  /** Writes `file` (relative to outputDir, or absolute), creating folders; returns its absolute path. */
  writeFile(file: string, content: string): Promise<string>
}

export interface Reporter {
  /** Shown in messages ("reporter <name> failed: …") and in the list of written files. */
  readonly name: string
  /** Called once, after the run and after teardown. Returns the paths it wrote, for the CLI to list. */
  onRunEnd(report: Report, context: ReporterContext): Promise<readonly string[] | undefined | void> | readonly string[] | undefined | void
}

/** What a reporter module exports (default export or `reporter`): a reporter, or a function or class making one. */
export type ReporterModuleExport = Reporter | ((options: ReporterOptions) => Reporter | Promise<Reporter>) | (new (options: ReporterOptions) => Reporter)

export interface ReporterOptions {
  outputDir: string
}

/** A reporter that cannot be loaded, or that threw: the message names it and says what to fix (exit code 2). */
export class ReporterError extends Error {
  override readonly name = 'ReporterError'
}

export const REPORT_JSON = 'report.json'
export const REPORT_HTML = 'report.html'
export const JUNIT_XML = 'junit.xml'

const json = (report: Report): string => `${JSON.stringify(report, null, 2)}\n`

export const jsonReporter = (): Reporter => ({
  name: 'json',
  onRunEnd: async (report, ctx) => [await ctx.writeFile(REPORT_JSON, json(report))]
})

export const htmlReporter = (): Reporter => ({
  name: 'html',
  onRunEnd: async (report, ctx) => [await ctx.writeFile(REPORT_HTML, toHtml(report))]
})

/** `path` defaults to outputDir/junit.xml. */
export const junitReporter = (path?: string): Reporter => ({
  name: 'junit',
  onRunEnd: async (report, ctx) => [await ctx.writeFile(path ?? JUNIT_XML, toJUnitXml(report))]
})

export interface SummaryReporterOptions extends MarkdownSummaryOptions {
  /** Written (replaced) with the summary. */
  path?: string
  /**
   * Appended to, as GitHub Actions expects of $GITHUB_STEP_SUMMARY (other steps may have written there already).
   */
  appendTo?: string
}

/** The markdown summary for CI: `--summary PATH`, and $GITHUB_STEP_SUMMARY when it is set. */
export const summaryReporter = (options: SummaryReporterOptions = {}): Reporter => ({
  name: 'summary',
  onRunEnd: async (report, ctx) => {
    const markdown = markdownSummary(report, options)
    const written: string[] = []
    if (options.path != null) written.push(await ctx.writeFile(options.path, markdown))
    if (options.appendTo != null) {
      await appendFile(options.appendTo, `${markdown}\n`)
      written.push(options.appendTo)
    }
    return written
  }
})

/** Reporters chosen by name on the command line (`--reporter NAME`); anything else is a module path. */
export const BUILTIN_REPORTERS: Readonly<Record<string, (options: ReporterOptions) => Reporter>> = {
  json: () => jsonReporter(),
  html: () => htmlReporter(),
  junit: () => junitReporter(),
  summary: () => summaryReporter({ path: 'summary.md' })
}

function isReporter (value: unknown): value is Reporter {
  return typeof value === 'object' && value !== null && typeof (value as Reporter).onRunEnd === 'function'
}

/**
 * A reporter from `--reporter SPEC`: a built-in's name, or the path of a module (relative to `cwd`) whose default
 * export (or `reporter` export) is a reporter, a factory function or a class.
 */
export async function loadReporter (spec: string, options: ReporterOptions, cwd = process.cwd()): Promise<Reporter> {
  const builtin = BUILTIN_REPORTERS[spec]
  if (builtin !== undefined) return builtin(options)
  if (!/[/\\.]/.test(spec)) {
    throw new ReporterError(`--reporter ${spec}: not a built-in reporter (${Object.keys(BUILTIN_REPORTERS).join(', ')}) nor a module path; write a path such as ./${spec}.ts`)
  }
  const file = isAbsolute(spec) ? spec : resolve(cwd, spec)
  let mod: Record<string, unknown>
  try {
    mod = await import(pathToFileURL(file).href) as Record<string, unknown>
  } catch (cause) {
    throw new ReporterError(`--reporter ${spec}: cannot load ${file}: ${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}`, { cause })
  }
  const exported = mod.default ?? mod.reporter
  let reporter: unknown = exported
  try {
    if (typeof exported === 'function') {
      const proto = (exported as { prototype?: { onRunEnd?: unknown } }).prototype
      reporter = proto !== undefined && typeof proto.onRunEnd === 'function'
        ? new (exported as new (o: ReporterOptions) => Reporter)(options)
        : await (exported as (o: ReporterOptions) => Reporter | Promise<Reporter>)(options)
    }
  } catch (cause) {
    throw new ReporterError(`--reporter ${spec}: creating the reporter threw: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
  if (!isReporter(reporter)) {
    throw new ReporterError(`--reporter ${spec}: ${file} must export (as default or as "reporter") an object with an onRunEnd(report, context) method, or a function or class returning one`)
  }
  return reporter
}

/**
 * Runs every reporter over the report, one after the other (they may write to the same folder). One reporter's
 * failure does not stop the others; afterwards the first failure is thrown as a ReporterError naming each that failed.
 */
export async function runReporters (reporters: readonly Reporter[], report: Report, outputDir: string): Promise<string[]> {
  const context: ReporterContext = {
    outputDir,
    writeFile: async (file, content) => {
      const path = isAbsolute(file) ? file : join(outputDir, file)
      await mkdir(dirname(path), { recursive: true })
      await writeFile(path, content)
      return resolve(path)
    }
  }
  await mkdir(outputDir, { recursive: true })
  const written: string[] = []
  const failed: string[] = []
  for (const reporter of reporters) {
    try {
      written.push(...(await reporter.onRunEnd(report, context) ?? []))
    } catch (err) {
      failed.push(`reporter "${reporter.name}" failed: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  if (failed.length > 0) throw new ReporterError(`${failed.join('; ')} (the other reports were written: ${written.join(', ') || 'none'})`)
  return written
}
