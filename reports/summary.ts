import type { ScenarioRecord } from '../scenarios/record.ts'
import { formatSeconds, plural, truncate } from './format.ts'
import { describeKpi, formatKpiValue, KPI_IDS } from './kpis.ts'
import { failedAssertions, failedSteps, OUTCOME_SYMBOL, problemsFirst, scenarioOutcome } from './outcome.ts'
import type { Report } from './report-schema.ts'

/** One-line and console summaries: what a CI log shows before anybody opens report.html. */

const SEPARATOR = '  '

/** Why a scenario did not pass, in one phrase: the first failing assertion, else the first failed step, else the reason. */
export function firstProblem (scenario: ScenarioRecord): string | undefined {
  if (scenario.invalid != null) return scenario.invalid
  const assertion = failedAssertions(scenario)[0]
  if (assertion != null) return `${assertion.id}: expected ${assertion.expected}, actual ${assertion.actual}`
  const step = failedSteps(scenario)[0]
  if (step != null) return `step ${step.index} (${step.label})${step.error != null ? `: ${step.error}` : ' failed'}`
  return scenario.reason
}

export function summaryLine (scenario: ScenarioRecord): string {
  const outcome = scenarioOutcome(scenario)
  const head = [`${OUTCOME_SYMBOL[outcome]} ${scenario.name}`, outcome]
  if (outcome === 'skipped') return [...head, scenario.reason ?? 'no reason given'].join(SEPARATOR)
  const passed = scenario.assertions.filter(a => a.passed).length
  const parts = [...head, formatSeconds(scenario.durationMs), `${passed}/${scenario.assertions.length} assertions`]
  const problem = outcome === 'passed' ? undefined : firstProblem(scenario)
  if (problem != null) parts.push(truncate(problem, 240))
  // Next to the verdict, so a timeout on a starved harness is not read as the network's fault.
  if (outcome !== 'passed' && scenario.harness?.overloaded === true) {
    parts.push(`⚠ harness overloaded (${scenario.harness.overloadReason ?? 'event loop late'}): timeouts may be the harness's, not the network's`)
  }
  return parts.join(SEPARATOR)
}

export function runSummary (report: Report): string {
  const { run, summary } = report
  const lines = [
    `chiral-sim run ${run.id}  mode ${run.mode}  seed ${run.seed}  timeScale ${run.timeScale}`,
    `${plural(summary.total, 'scenario')}: ${summary.passed} passed, ${summary.failed} failed, ${summary.error} error, ` +
      `${summary.skipped} skipped, ${summary.invalid} invalid`,
    ...problemsFirst(report.scenarios).map(s => `  ${s.summaryLine}`),
    'KPIs:',
    ...KPI_IDS.map(id => {
      const k = report.kpis[id]
      const mark = k.met === null ? '–' : k.met ? '✔' : '✘'
      return `  ${mark} ${k.name}: ${describeKpi(k)}`
    })
  ]
  if (report.baseline != null) {
    const b = report.baseline
    lines.push(`Against baseline ${b.baseline.runId}: ${plural(b.regressions, 'regression')}`)
    for (const k of b.kpis.filter(d => d.regression)) {
      lines.push(`  ✘ ${k.name}: ${formatKpiValue(k.before, k.unit)} → ${formatKpiValue(k.after, k.unit)} (${k.note})`)
    }
    for (const s of b.scenarios.filter(d => d.regression)) lines.push(`  ✘ ${s.name}: ${s.before} → ${s.after}`)
  }
  return lines.join('\n')
}
