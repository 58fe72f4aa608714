import type { ScenarioRecord } from '../scenarios/record.ts'
import { failureFacts } from './failure.ts'
import { formatPlanOffset, plural, truncate } from './format.ts'
import { formatKpiValue, formatTarget, KPI_IDS, kpiVerdict } from './kpis.ts'
import { peerNames } from './names.ts'
import { failedAssertions, isProblem, OUTCOME_SYMBOL, problemsFirst } from './outcome.ts'
import type { Report } from './report-schema.ts'

/**
 * The run as GitHub-flavoured markdown for a CI step summary ($GITHUB_STEP_SUMMARY) or a pull-request comment:
 * failures first with where to look, the KPI table, the interop matrix of a run with external implementations,
 * then every scenario in one line. Cells are escaped so recorded text can never break the table or inject markup.
 */

/** A section a caller adds to the summary, e.g. an interop matrix built elsewhere. */
export interface SummarySection {
  title: string
  /** Markdown, already escaped (build tables with markdownTable). */
  markdown: string
}

export interface MarkdownSummaryOptions {
  /** Sections placed after the KPI table. */
  sections?: readonly SummarySection[]
  /** Link to the HTML report (a CI artifact URL), shown at the top. */
  reportUrl?: string
}

/** Failing assertions listed per scenario; the HTML report has the rest. */
const ASSERTIONS_SHOWN = 5
/** Longest text of one table cell: a summary is read on one screen. */
const CELL_CHARS = 300

/** Text safe inside a markdown table cell: no pipes, no line breaks, no HTML, no accidental emphasis or links. */
export function markdownCell (value: string): string {
  return truncate(value, CELL_CHARS)
    .replace(/\\/g, '\\\\')
    .replace(/[|*_`[\]<>~#]/g, c => `\\${c}`)
    .replace(/\r?\n/g, ' ')
}

/** A GitHub-flavoured markdown table; every cell is escaped. */
export function markdownTable (headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]): string => `| ${cells.map(markdownCell).join(' | ')} |`
  return [line(headers), `|${headers.map(() => ' --- ').join('|')}|`, ...rows.map(line)].join('\n')
}

/** Text for running markdown (not a table): escaped the same way, line breaks kept as spaces. */
const text = markdownCell

function failureBlock (s: ScenarioRecord & { outcome: string }): string {
  const names = peerNames(s)
  const { step, asymmetries, errored, withOutput } = failureFacts(s)
  const lines = [`#### ${OUTCOME_SYMBOL[s.outcome as keyof typeof OUTCOME_SYMBOL]} \`${s.name.replace(/`/g, "'")}\` — ${text(s.title)} (${s.outcome}, ${s.mode})`]
  if (s.invalid != null) lines.push(`- **Invalid run:** ${text(names.named(s.invalid))}`)
  else if (s.reason != null) lines.push(`- **Reason:** ${text(names.named(s.reason))}`)
  if (step !== undefined) {
    lines.push(`- **Step ${step.index}** (${text(step.kind)}: ${text(step.label)}) at ${formatPlanOffset(s, step.startedAt)} plan time` +
      `${step.targets.length > 0 ? ` on ${text(step.targets.join(', '))}` : ''}${step.error != null ? `: ${text(names.named(step.error))}` : ''}`)
  }
  for (const a of asymmetries) {
    lines.push(`- **Cause:** ${text(a.sees)} sees ${text(a.unseen)} but not the reverse — \`${a.cause}\`: ${text(names.named(a.explanation))}`)
  }
  if (errored.length > 0) lines.push(`- Nodes that logged an error: ${text(errored.join(', '))}`)
  if (withOutput.length > 0) lines.push(`- Node output attached in report.html: ${text(withOutput.join(', '))}`)
  const failed = failedAssertions(s)
  if (failed.length > 0) {
    lines.push('', markdownTable(['assertion', 'expected', 'actual'], failed.slice(0, ASSERTIONS_SHOWN).map(a => [a.id, names.named(a.expected), names.named(a.actual)])))
    if (failed.length > ASSERTIONS_SHOWN) lines.push('', `…and ${failed.length - ASSERTIONS_SHOWN} more failing assertions in report.html.`)
  }
  return lines.join('\n')
}

/**
 * Implementations × modes, for runs with external nodes that identified themselves (an interop run): which
 * implementation passed where. Built from `external:probe` events, so any black-box bootstrap counts.
 */
export function interopMatrix (report: Report): SummarySection | undefined {
  const implOf = (s: ScenarioRecord): string | undefined => {
    for (const e of s.events) if (e.type === 'external:probe' && e.agentVersion != null) return e.agentVersion
    return undefined
  }
  const rows = new Map<string, Map<string, Array<Report['scenarios'][number]>>>()
  for (const s of report.scenarios) {
    const impl = implOf(s)
    if (impl === undefined) continue
    const byMode = rows.get(impl) ?? new Map<string, Array<Report['scenarios'][number]>>()
    byMode.set(s.mode, [...(byMode.get(s.mode) ?? []), s])
    rows.set(impl, byMode)
  }
  if (rows.size === 0) return undefined
  const modes = [...new Set(report.scenarios.filter(s => implOf(s) !== undefined).map(s => s.mode))].sort()
  const cell = (scenarios: Array<Report['scenarios'][number]> | undefined): string => {
    if (scenarios === undefined) return '—'
    const bad = scenarios.filter(s => s.outcome !== 'passed')
    const passed = scenarios.reduce((n, s) => n + s.assertions.filter(a => a.passed).length, 0)
    const total = scenarios.reduce((n, s) => n + s.assertions.length, 0)
    return bad.length === 0 ? `✔ ${passed}/${total}` : `✘ ${bad.map(s => `${s.name} ${s.outcome}`).join(', ')} (${passed}/${total})`
  }
  return {
    title: 'Interop matrix',
    markdown: markdownTable(['implementation (agent version)', ...modes], [...rows].map(([impl, byMode]) => [impl, ...modes.map(m => cell(byMode.get(m)))]))
  }
}

export function markdownSummary (report: Report, options: MarkdownSummaryOptions = {}): string {
  const { run, summary } = report
  const problems = report.scenarios.filter(s => isProblem(s.outcome))
  const head = problems.length === 0
    ? `✔ ${summary.passed} of ${plural(summary.total, 'scenario')} passed${summary.skipped > 0 ? `, ${summary.skipped} skipped` : ''}`
    : `✘ ${plural(problems.length, 'scenario')} of ${summary.total} did not pass`
  const out = [
    `## chiral-sim: ${head}`,
    '',
    `Run \`${run.id.replace(/`/g, "'")}\` · mode ${run.mode} · seed ${run.seed} · timeScale ${run.timeScale} · ` +
      `${summary.passed} passed, ${summary.failed} failed, ${summary.error} error, ${summary.skipped} skipped, ${summary.invalid} invalid` +
      `${options.reportUrl != null ? ` · [report.html](${options.reportUrl})` : ''}`
  ]
  if (problems.length > 0) out.push('', '### Failures', '', ...problemsFirst(problems).flatMap(s => [failureBlock(s), '']))
  if (report.baseline != null && report.baseline.regressions > 0) {
    const b = report.baseline
    out.push('', `### Regressions against baseline \`${b.baseline.runId.replace(/`/g, "'")}\``, '', markdownTable(['', 'before', 'after', 'note'], [
      ...b.kpis.filter(k => k.regression).map(k => [k.name, formatKpiValue(k.before, k.unit), formatKpiValue(k.after, k.unit), k.note]),
      ...b.scenarios.filter(sc => sc.regression).map(sc => [sc.name, sc.before ?? '—', sc.after ?? '—', sc.change])
    ]))
  }
  out.push('', '### KPIs', '', markdownTable(['KPI', 'value', 'target', 'plan baseline', 'samples', 'verdict'], KPI_IDS.map(id => {
    const k = report.kpis[id]
    return [k.name, formatKpiValue(k.value, k.unit), formatTarget(k), k.baseline !== undefined ? formatKpiValue(k.baseline, k.unit) : '—', String(k.samples),
      `${k.met === null ? '–' : k.met ? '✔' : '✘'} ${kpiVerdict(k)}`]
  })))
  const interop = interopMatrix(report)
  for (const section of [...(interop !== undefined ? [interop] : []), ...(options.sections ?? [])]) out.push('', `### ${text(section.title)}`, '', section.markdown)
  out.push('', '<details><summary>All scenarios</summary>', '', markdownTable(['', 'scenario', 'outcome', 'mode', 'assertions', 'duration (real)'],
    problemsFirst(report.scenarios).map(s => [OUTCOME_SYMBOL[s.outcome], s.name, s.outcome, s.mode,
      `${s.assertions.filter(a => a.passed).length}/${s.assertions.length}`, `${(s.durationMs / 1000).toFixed(1)}s`])), '', '</details>', '')
  return out.join('\n')
}
