import type { AssertionResult, StepRecord } from '../scenarios/record.ts'
import { escapeAttr, escapeText } from './escape.ts'
import { formatIso, formatOffset, truncate } from './format.ts'
import { describeKpi, KPI_IDS } from './kpis.ts'
import { failureFacts } from './failure.ts'
import { peerNames } from './names.ts'
import { failedAssertions, failedSteps, isProblem } from './outcome.ts'
import { firstProblem } from './summary.ts'
import type { Report, ReportScenario } from './report-schema.ts'

/**
 * JUnit XML for CI servers: one <testsuite> per run, one <testcase> per scenario. Invalid scenarios are failures
 * (a run that cannot be trusted must turn the build red), with the reason as the message.
 */

// CI servers show the message attribute on one line; the full text is in the element body.
const MESSAGE_MAX = 500

type Attrs = Record<string, string | number | undefined>

function element (name: string, attrs: Attrs, body?: string): string {
  const attributes = Object.entries(attrs)
    .filter((entry): entry is [string, string | number] => entry[1] !== undefined)
    .map(([k, v]) => ` ${k}="${escapeAttr(String(v))}"`).join('')
  return body === undefined ? `<${name}${attributes}/>` : `<${name}${attributes}>${body}</${name}>`
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3)

function describeAssertion (a: AssertionResult, startedAt: number): string {
  return [
    `✘ ${a.id}: ${a.description}${a.planRef != null ? ` (${a.planRef})` : ''}`,
    `    expected: ${a.expected}`,
    `    actual:   ${a.actual}`,
    `    at ${formatOffset(a.at - startedAt)}${a.step != null ? `, step ${a.step}` : ''}`
  ].join('\n')
}

const describeStep = (s: StepRecord, startedAt: number): string =>
  `step ${s.index} ${s.kind} "${s.label}" ${formatOffset(s.startedAt - startedAt)} ${s.ok ? 'ok' : `FAILED${s.error != null ? `: ${s.error}` : ''}`}`

function problemBody (s: ReportScenario): string {
  const names = peerNames(s)
  const parts = [
    ...(s.invalid != null ? [`invalid run: ${s.invalid}`] : []),
    ...(s.reason != null ? [`reason: ${s.reason}`] : []),
    ...failedAssertions(s).map(a => describeAssertion(a, s.startedAt)),
    ...failedSteps(s).map(step => describeStep(step, s.startedAt)),
    ...failureFacts(s).asymmetries.map(a => `cause: ${a.sees} sees ${a.unseen} but not the reverse — ${a.cause}: ${names.named(a.explanation)}`)
  ]
  return parts.join('\n')
}

/** What the scenario's own processes and containers printed, for a scenario that did not pass: CI shows it per test. */
function nodeOutputs (s: ReportScenario): string {
  if (!isProblem(s.outcome)) return ''
  const outputs = s.nodes.filter(node => node.output !== undefined)
  if (outputs.length === 0) return ''
  return element('system-err', {}, escapeText(outputs.map(node => `=== ${node.name} (${node.role}, output of ${node.output!.starts} start${node.output!.starts === 1 ? '' : 's'}) ===\n${node.output!.text}`).join('\n')))
}

function outcomeElement (s: ReportScenario): string {
  const message = truncate(firstProblem(s) ?? s.outcome, MESSAGE_MAX)
  switch (s.outcome) {
    case 'passed': return ''
    case 'skipped': return element('skipped', { message: s.reason ?? 'skipped' })
    case 'failed': return element('failure', { message, type: 'AssertionFailure' }, escapeText(problemBody(s)))
    case 'invalid': return element('failure', { message: `invalid run: ${message}`, type: 'InvalidRun' }, escapeText(problemBody(s)))
    case 'error': return element('error', { message, type: 'ScenarioError' }, escapeText(problemBody(s)))
  }
}

function testcase (s: ReportScenario): string {
  const steps = s.steps.map(step => describeStep(step, s.startedAt))
  const out = s.outcome === 'skipped' ? '' : element('system-out', {}, escapeText([s.summaryLine, ...steps].join('\n')))
  return element('testcase', { name: s.name, classname: s.mode, time: seconds(s.durationMs), file: s.file }, outcomeElement(s) + out + nodeOutputs(s))
}

function properties (report: Report): string {
  const { run } = report
  const props: Array<[string, string | number]> = [
    ['mode', run.mode], ['seed', run.seed], ['timeScale', run.timeScale],
    ...Object.entries(run.versions).map(([k, v]): [string, string] => [`version.${k}`, v]),
    ...KPI_IDS.map((id): [string, string] => [`kpi.${id}`, describeKpi(report.kpis[id])])
  ]
  return element('properties', {}, props.map(([name, value]) => element('property', { name, value })).join(''))
}

export function toJUnitXml (report: Report): string {
  const { summary, run } = report
  const counts = {
    tests: summary.total,
    failures: summary.failed + summary.invalid,
    errors: summary.error,
    skipped: summary.skipped,
    time: seconds(run.endedAt - run.startedAt),
    timestamp: formatIso(run.startedAt)
  }
  const suite = element('testsuite', {
    name: `chiral-sim ${run.id}`, ...counts, hostname: `${run.host.platform}-${run.host.arch}`
  }, `\n${properties(report)}\n${report.scenarios.map(testcase).join('\n')}\n`)
  return `<?xml version="1.0" encoding="UTF-8"?>\n${element('testsuites', { name: 'chiral-sim', ...counts }, `\n${suite}\n`)}\n`
}
