import { toPlanMs } from '../nodes/timing.ts'
import type { ScenarioRecord } from '../scenarios/record.ts'
import type { BaselineDiff } from './report-schema.ts'
import { describeTimeBase, formatIso, formatNumber, formatOffset, formatPlanOffset, formatSeconds, plural } from './format.ts'
import { kpiGauge, sweepChart } from './html-charts.ts'
import { failureFacts } from './failure.ts'
import { filterBar, FILTER_SCRIPT, FILTER_SCRIPT_HASH } from './html-filter.ts'
import { html, trusted, type Markup } from './html-markup.ts'
import { matricesSection } from './html-matrix.ts'
import { eventRow, nodeLink, nodesSection } from './html-nodes.ts'
import { STYLESHEET } from './html-style.ts'
import { isKeyEvent } from './events.ts'
import { timelineLegend, timelineSvg } from './html-timeline.ts'
import { peerNames, type PeerNames } from './names.ts'
import { formatKpiValue, formatTarget, KPI_IDS, KPI_MEANINGS, kpiState, kpiVerdict, type Kpi } from './kpis.ts'
import { failedAssertions, failedSteps, isProblem, problemsFirst, ScenarioOutcomeSchema, type ScenarioOutcome } from './outcome.ts'
import type { Report, ReportScenario } from './report-schema.ts'
import { sweepSeries } from './sweep.ts'

/**
 * report.html: one self-contained file for people. Failures come first and open; everything else is one click
 * away. One inline script (the filters), allowed by its hash, and no network: the Content-Security-Policy forbids
 * any fetch, so a report can never phone home or break when opened offline from a CI artifact. With scripts off
 * the page is whole; only the filters are missing.
 */

/** Rows shown in a scenario's event table; the timeline and report.json keep every event. */
export const EVENT_TABLE_LIMIT = 500

const CSP = `default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src ${FILTER_SCRIPT_HASH}`

const badge = (outcome: ScenarioOutcome): Markup => html`<span class="badge o-${outcome}">${outcome}</span>`
const anchor = (index: number): string => `scenario-${index}`
const stepAnchor = (index: number, step: number): string => `s${index}-step-${step}`

function header (report: Report): Markup {
  const { run } = report
  const facts: Array<[string, string]> = [
    ['mode', run.mode], ['seed', String(run.seed)], ['timeScale', String(run.timeScale)],
    ['started', formatIso(run.startedAt)], ['ended', formatIso(run.endedAt)], ['duration', formatSeconds(run.endedAt - run.startedAt)],
    ['node', run.versions.node], ['libp2p', run.versions.libp2p], ['kad-dht', run.versions.kadDht], ['chiral-sim', run.versions.chiralSim],
    ['host', `${run.host.platform}/${run.host.arch}, ${run.host.cpus} CPUs, ${formatNumber(run.host.memoryMiB)} MiB`],
    ['argv', run.argv.join(' ') || '—']
  ]
  return html`<header><h1>chiral-sim report — run <span class="mono">${run.id}</span></h1>
    <div class="facts">${facts.map(([k, v]) => html`<div>${k}: <b>${v}</b></div>`)}</div>
    ${run.timeScale < 1 ? html`<p class="note">Time was compressed by timeScale ${run.timeScale}: run and scenario durations are wall-clock; inside a scenario (steps, events, timeline) ${describeTimeBase(run.timeScale)}; the failure-detection KPI is converted back to plan time too.</p>` : ''}
  </header>`
}

function summaryBar (report: Report): Markup {
  const { summary } = report
  const outcomes = ScenarioOutcomeSchema.options
  return html`<section id="summary"><div class="summary-bar" role="img" aria-label="${`${summary.passed} of ${summary.total} passed`}">${
    outcomes.filter(o => summary[o] > 0).map(o => html`<span class="o-${o}" style="flex: ${summary[o]}" title="${`${summary[o]} ${o}`}"></span>`)
  }</div>
  <div class="counts"><strong>${plural(summary.total, 'scenario')}</strong>${outcomes.map(o => html`<span>${badge(o)} ${summary[o]}</span>`)}</div></section>`
}

/** A moment in plan time, the real offset on hover. */
const at = (s: ScenarioRecord, time: number): Markup => html`<span title="${`real ${formatOffset(time - s.startedAt)}`}">${formatPlanOffset(s, time)}</span>`

/**
 * A duration in plan time, with the real one beside it when they differ: some bounds are real time at any timeScale
 * (Test 3's 15 s discovery, dial and ping deadlines), and a step measured against one must be readable against it.
 */
const took = (s: ScenarioRecord, ms: number): string => s.timeScale === 1 ? formatSeconds(ms) : `${formatSeconds(toPlanMs(ms, s.timeScale))} (${formatSeconds(ms)} real)`

const linkedTargets = (index: number, targets: readonly string[], names: PeerNames): Markup[] =>
  targets.map((t, i) => html`${i > 0 ? ', ' : ''}${nodeLink(index, t, names)}`)

function assertionsTable (s: ScenarioRecord, index: number, names: PeerNames, onlyFailed: boolean): Markup {
  const rows = onlyFailed ? failedAssertions(s) : s.assertions
  if (rows.length === 0) return html`<p class="muted">No assertions.</p>`
  return html`<table class="assertions"><thead><tr><th></th><th>assertion</th><th>expected</th><th>actual</th><th>at (plan)</th></tr></thead><tbody>${
    rows.map(a => html`<tr class="${a.passed ? 'pass' : 'fail'}"><td>${a.passed ? '✔' : '✘'}</td>
      <td><code>${a.id}</code><br>${names.named(a.description)}${a.planRef != null ? html`<br><span class="muted">${a.planRef}</span>` : ''}</td>
      <td class="expected">${names.named(a.expected)}</td><td class="actual">${names.named(a.actual)}</td>
      <td class="mono">${at(s, a.at)}${a.step != null ? html`<br><a href="#${stepAnchor(index, a.step)}">step ${a.step}</a>` : ''}</td></tr>`)
  }</tbody></table>`
}

function stepsTable (s: ScenarioRecord, index: number, names: PeerNames, onlyFailed: boolean): Markup {
  const rows = onlyFailed ? failedSteps(s) : s.steps
  if (rows.length === 0) return html``
  return html`<table class="steps"><thead><tr><th>#</th><th>kind</th><th>step</th><th>nodes</th><th>start (plan)</th><th>took</th><th>result</th></tr></thead><tbody>${
    rows.map(st => html`<tr class="${st.ok ? 'pass' : 'fail'}" ${onlyFailed ? '' : html`id="${stepAnchor(index, st.index)}"`}><td>${onlyFailed ? html`<a href="#${stepAnchor(index, st.index)}">${st.index}</a>` : st.index}</td><td>${st.kind}</td><td>${st.label}</td><td>${linkedTargets(index, st.targets, names)}</td>
      <td class="mono">${at(s, st.startedAt)}</td><td class="mono">${took(s, st.endedAt - st.startedAt)}</td>
      <td>${st.ok ? 'ok' : html`<strong>failed</strong>${st.error != null ? html`: ${names.named(st.error)}` : ''}`}</td></tr>`)
  }</tbody></table>`
}

/** Where to look first in a failed scenario, each fact a link into the scenario's section. */
function whereItFailed (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const { step, asymmetries, errored, withOutput } = failureFacts(s)
  const parts: Markup[] = []
  if (step !== undefined) {
    parts.push(html`<li>Step: <a href="#${stepAnchor(index, step.index)}">step ${step.index}</a> (${step.kind}: ${step.label}) at ${at(s, step.startedAt)}${
      step.targets.length > 0 ? html` on ${linkedTargets(index, step.targets, names)}` : ''}</li>`)
  }
  for (const a of asymmetries) {
    parts.push(html`<li>Cause: ${nodeLink(index, a.sees, names)} sees ${nodeLink(index, a.unseen, names)} but not the reverse — <span class="cause">${a.cause}</span> ${names.named(a.explanation)}</li>`)
  }
  if (errored.length > 0) parts.push(html`<li>Nodes that logged an error: ${linkedTargets(index, errored, names)}</li>`)
  if (withOutput.length > 0) parts.push(html`<li>Node output attached: ${linkedTargets(index, withOutput, names)}</li>`)
  return parts.length === 0 ? html`` : html`<ul class="where">${parts}</ul>`
}

function failures (report: Report, names: readonly PeerNames[]): Markup {
  const indexed = report.scenarios.map((s, i) => ({ s, i })).filter(({ s }) => isProblem(s.outcome))
  if (indexed.length === 0) return html`<section id="failures"><h2>Failures</h2><p class="ok-note">✔ No failed, errored or invalid scenario.</p></section>`
  return html`<section id="failures"><h2>Failures (${indexed.length})</h2>${indexed.map(({ s, i }) => html`
    <div class="failure-card ${s.outcome}" data-scenario="${s.name}">
      <h3>${badge(s.outcome)} <span class="mono">${s.name}</span> — ${s.title} <a href="#${anchor(i)}">details</a></h3>
      ${s.invalid != null ? html`<p><strong>Invalid run:</strong> ${names[i]!.named(s.invalid)}</p>` : ''}
      ${s.reason != null ? html`<p><strong>Reason:</strong> ${names[i]!.named(s.reason)}</p>` : ''}
      ${whereItFailed(s, i, names[i]!)}
      ${failedAssertions(s).length > 0 ? assertionsTable(s, i, names[i]!, true) : ''}
      ${stepsTable(s, i, names[i]!, true)}
    </div>`)}</section>`
}

function kpiCard (kpi: Kpi): Markup {
  const state = kpiState(kpi)
  const mark = kpi.met === null ? '' : kpi.met ? '✔ ' : '✘ '
  return html`<div class="kpi" id="kpi-${kpi.id}" data-kpi="${kpi.id}">
    <h3>${kpi.name}</h3>
    <div><span class="value">${formatKpiValue(kpi.value, kpi.unit)}</span><span class="verdict ${state}">${mark}${kpiVerdict(kpi)}</span></div>
    ${kpiGauge(kpi)}
    <div class="meta">target ${formatTarget(kpi)} · ${plural(kpi.samples, 'sample')}${kpi.baseline !== undefined ? ` · plan baseline ${formatKpiValue(kpi.baseline, kpi.unit)}` : ''}</div>
    <div class="detail">${kpi.detail}</div>
    <p class="meta">What it measures: ${KPI_MEANINGS[kpi.id]}</p>
  </div>`
}

function kpiSection (report: Report): Markup {
  return html`<section id="kpis"><h2>KPIs against the plan's targets</h2><div class="kpis">${KPI_IDS.map(id => kpiCard(report.kpis[id]))}</div></section>`
}

function baselineSection (diff: BaselineDiff): Markup {
  const b = diff.baseline
  return html`<section id="baseline"><h2>Compared with baseline <span class="mono">${b.runId}</span></h2>
    <p>${diff.regressions > 0 ? html`<strong class="verdict unmet">${plural(diff.regressions, 'regression')}</strong>` : html`<span class="verdict met">No regression</span>`}
      <span class="muted"> · baseline generated ${b.generatedAt}, mode ${b.mode}, seed ${b.seed}</span></p>
    <h3>KPIs</h3>
    <table><thead><tr><th></th><th>KPI</th><th>baseline</th><th>now</th><th>change</th><th>note</th></tr></thead><tbody>${
      diff.kpis.map(k => html`<tr class="${k.regression ? 'regression' : ''}"><td>${k.regression ? '✘' : ''}</td><td>${k.name}</td>
        <td>${formatKpiValue(k.before, k.unit)}</td><td>${formatKpiValue(k.after, k.unit)}</td>
        <td class="mono">${k.delta === null ? '—' : `${k.delta >= 0 ? '+' : '−'}${formatKpiValue(Math.abs(k.delta), k.unit)}`}</td><td>${k.note}</td></tr>`)
    }</tbody></table>
    <h3>Scenarios</h3>
    <table><thead><tr><th></th><th>scenario</th><th>baseline</th><th>now</th><th>change</th></tr></thead><tbody>${
      diff.scenarios.map(s => html`<tr class="${s.regression ? 'regression' : ''}"><td>${s.regression ? '✘' : ''}</td><td class="mono">${s.name}</td>
        <td>${s.before === null ? '—' : badge(s.before)}</td><td>${s.after === null ? '—' : badge(s.after)}</td><td>${s.change}</td></tr>`)
    }</tbody></table></section>`
}

/**
 * The scenario's key events in one chronological table: what changed (starts, stops, connects, health turns,
 * discovery verdicts, failed dials, warnings and errors). Routine events (every health check, countdowns, routing
 * table churn) are in each node's own stream, so the page does not carry every event twice.
 */
function eventTable (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const key = s.events.filter(e => isKeyEvent(e, names))
  const shown = key.slice(0, EVENT_TABLE_LIMIT)
  const note = key.length > shown.length
    ? html`<p class="note">Showing the first ${shown.length} of ${key.length} key events; the timeline above, each node's stream and report.json hold all of them.</p>`
    : ''
  if (key.length === 0) return html`<p class="muted">No key event; each node's stream above has all ${plural(s.events.length, 'event')}.</p>`
  return html`<details class="events"><summary>${plural(key.length, 'key event')} of ${s.events.length}, all nodes; every event is in its node's stream above</summary>${note}<p class="match-note"></p>
    <table class="events"><thead><tr><th>plan time</th><th>node</th><th>event</th><th>details</th></tr></thead><tbody>${
      shown.map(e => eventRow(s, e, names, nodeLink(index, e.node, names, false)))
    }</tbody></table></details>`
}

function faultsTable (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  return html`<table class="faults"><thead><tr><th>step</th><th>link</th><th>fault</th><th>attributes</th><th>applied (plan)</th><th>removed (plan)</th></tr></thead><tbody>${
    s.faults.map(f => html`<tr><td><a href="#${stepAnchor(index, f.step)}">${f.step}</a></td><td class="mono">${names.named(f.link)}</td><td>${f.kind}</td><td class="mono">${JSON.stringify(f.attributes)}</td>
      <td class="mono">${at(s, f.appliedAt)}</td><td class="mono">${f.removedAt === null ? 'never' : at(s, f.removedAt)}</td></tr>`)
  }</tbody></table>`
}

function recoveriesTable (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const when = (t: number | null): Markup | string => t === null ? '—' : at(s, t)
  return html`<table class="recoveries"><thead><tr><th>node</th><th>failed (plan)</th><th>detected</th><th>recovered</th><th>automatic</th></tr></thead><tbody>${
    s.recoveries.map(r => html`<tr class="${r.automatic && r.recoveredAt !== null ? 'pass' : 'fail'}"><td>${nodeLink(index, r.node, names)}</td><td class="mono">${when(r.failedAt)}</td>
      <td class="mono">${when(r.detectedAt)}</td><td class="mono">${when(r.recoveredAt)}</td><td>${r.automatic ? 'yes' : 'no'}</td></tr>`)
  }</tbody></table>`
}

/** What the search looks through: the scenario, its nodes and their peer IDs, and the kinds of event it recorded. */
function searchText (s: ReportScenario, names: PeerNames): string {
  const types = new Set(s.events.map(e => e.type))
  return [s.name, s.title, s.outcome, s.mode, ...s.tags, s.file ?? '', ...s.nodes.map(node => node.name),
    ...names.entries.flat(), ...types].join(' ').toLowerCase()
}

function scenarioSection (s: ReportScenario, index: number, names: PeerNames): Markup {
  const facts: Array<[string, string]> = [
    ['title', s.title], ['mode', s.mode], ['seed', String(s.seed)], ['timeScale', String(s.timeScale)],
    ['duration', s.timeScale === 1 ? formatSeconds(s.durationMs) : `${formatSeconds(s.durationMs)} real, ${formatSeconds(toPlanMs(s.durationMs, s.timeScale))} plan`], ['started', formatIso(s.startedAt)],
    ...(s.planTest != null ? [['plan test', `Test ${s.planTest}`] as [string, string]] : []),
    ...(s.tags.length > 0 ? [['tags', s.tags.join(', ')] as [string, string]] : []),
    ...(s.file != null ? [['file', s.file] as [string, string]] : []),
    ...(s.harness != null ? [['harness', `event-loop lag p99 ${s.harness.eventLoopLagMs.p99} ms (max ${s.harness.eventLoopLagMs.max} ms), CPU ${s.harness.processCpuPercent} % of a core, machine ${s.harness.hostCpuBusyPercent ?? '?'} % busy${s.harness.overloaded ? ' — overloaded' : ''}`] as [string, string]] : [])
  ]
  const series = s.sweep === undefined ? [] : sweepSeries(s.sweep)
  return html`<details class="scenario ${isProblem(s.outcome) ? 'problem' : ''}" id="${anchor(index)}" data-scenario="${s.name}" ${isProblem(s.outcome) ? html`open` : ''}
    data-outcome="${s.outcome}" data-mode="${s.mode}" data-tags="${JSON.stringify(s.tags)}" data-search="${searchText(s, names)}">
    <summary>${badge(s.outcome)} ${s.summaryLine}</summary><div class="body">
    ${s.description !== '' ? html`<p>${s.description}</p>` : ''}
    <div class="facts">${facts.map(([k, v]) => html`<div>${k}: <b>${v}</b></div>`)}</div>
    <p class="muted">${describeTimeBase(s.timeScale)}; hover a time for the real one.</p>
    ${s.invalid != null ? html`<p><strong>Invalid run:</strong> ${names.named(s.invalid)}</p>` : ''}
    ${s.reason != null ? html`<p><strong>Reason:</strong> ${names.named(s.reason)}</p>` : ''}
    ${isProblem(s.outcome) ? whereItFailed(s, index, names) : ''}
    <h4>Assertions</h4>${assertionsTable(s, index, names, false)}
    ${s.steps.length > 0 ? html`<h4>Steps</h4>${stepsTable(s, index, names, false)}` : ''}
    ${s.events.length + s.steps.length + s.faults.length > 0 ? html`<h4>Timeline</h4>${timelineLegend()}${timelineSvg(s, index, names)}` : ''}
    ${matricesSection(s, index, names)}
    ${s.faults.length > 0 ? html`<h4>Faults</h4>${faultsTable(s, index, names)}` : ''}
    ${s.recoveries.length > 0 ? html`<h4>Recoveries</h4>${recoveriesTable(s, index, names)}` : ''}
    ${series.map(sw => html`<h4>Sweep: ${sw.parameter}</h4>${sweepChart(sw)}`)}
    ${s.nodes.length + s.events.length > 0 ? html`<h4>Nodes</h4>${nodesSection(s, index, names)}` : ''}
    ${s.events.length > 0 ? html`<h4>Key events</h4>${eventTable(s, index, names)}` : ''}
  </div></details>`
}

function scenariosSection (report: Report, names: readonly PeerNames[]): Markup {
  const ordered = problemsFirst(report.scenarios.map((s, i) => ({ ...s, index: i })))
  return html`<section id="scenarios"><h2>Scenarios</h2>${ordered.map(s => scenarioSection(s, s.index, names[s.index]!))}</section>`
}

export function toHtml (report: Report): string {
  const { run, summary } = report
  const names = report.scenarios.map(s => peerNames(s))
  const title = `chiral-sim ${run.id}: ${summary.passed}/${summary.total} passed`
  return `<!DOCTYPE html>\n${html`<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${trusted(STYLESHEET)}</style></head>
<body><main>
${header(report)}
${summaryBar(report)}
${filterBar(report)}
${failures(report, names)}
${kpiSection(report)}
${report.baseline !== undefined ? baselineSection(report.baseline) : ''}
${scenariosSection(report, names)}
<footer>Generated ${report.generatedAt} from the run record by chiral-sim ${run.versions.chiralSim}. report.json holds every event and can rebuild this page.</footer>
</main><script>${trusted(FILTER_SCRIPT)}</script></body></html>`.html}\n`
}
