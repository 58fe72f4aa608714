import type { ScenarioRecord } from '../sim/record.ts'
import type { BaselineDiff } from './baseline.ts'
import { describeEvent, formatIso, formatNumber, formatOffset, formatSeconds, plural } from './format.ts'
import { kpiGauge, sweepChart } from './html-charts.ts'
import { html, trusted, type Markup } from './html-markup.ts'
import { matrixSection } from './html-matrix.ts'
import { STYLESHEET } from './html-style.ts'
import { eventFamily, familyLegend, timelineSvg } from './html-timeline.ts'
import { formatKpiValue, formatTarget, KPI_IDS, kpiState, kpiVerdict, type Kpi } from './kpis.ts'
import { failedAssertions, failedSteps, isProblem, problemsFirst, ScenarioOutcomeSchema, type ScenarioOutcome } from './outcome.ts'
import type { Report, ReportScenario } from './report-schema.ts'
import { sweepSeries } from './sweep.ts'

/**
 * report.html: one self-contained file for people. Failures come first and open; everything else is one click
 * away. No script, no network: the Content-Security-Policy forbids any fetch, so a report can never phone home
 * or break when opened offline from a CI artifact.
 */

/** Rows shown in a scenario's event table; the timeline and report.json keep every event. */
export const EVENT_TABLE_LIMIT = 500

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

const badge = (outcome: ScenarioOutcome): Markup => html`<span class="badge o-${outcome}">${outcome}</span>`
const anchor = (index: number): string => `scenario-${index}`

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
    ${run.timeScale < 1 ? html`<p class="note">Time was compressed by timeScale ${run.timeScale}: scenario durations are wall-clock; the failure-detection KPI is converted back to plan-equivalent time.</p>` : ''}
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

function assertionsTable (s: ScenarioRecord, onlyFailed: boolean): Markup {
  const rows = onlyFailed ? failedAssertions(s) : s.assertions
  if (rows.length === 0) return html`<p class="muted">No assertions.</p>`
  return html`<table class="assertions"><thead><tr><th></th><th>assertion</th><th>expected</th><th>actual</th><th>at</th></tr></thead><tbody>${
    rows.map(a => html`<tr class="${a.passed ? 'pass' : 'fail'}"><td>${a.passed ? '✔' : '✘'}</td>
      <td><code>${a.id}</code><br>${a.description}${a.planRef != null ? html`<br><span class="muted">${a.planRef}</span>` : ''}</td>
      <td class="expected">${a.expected}</td><td class="actual">${a.actual}</td>
      <td class="mono">${formatOffset(a.at - s.startedAt)}${a.step != null ? html`<br>step ${a.step}` : ''}</td></tr>`)
  }</tbody></table>`
}

function stepsTable (s: ScenarioRecord, onlyFailed: boolean): Markup {
  const rows = onlyFailed ? failedSteps(s) : s.steps
  if (rows.length === 0) return html``
  return html`<table class="steps"><thead><tr><th>#</th><th>kind</th><th>step</th><th>targets</th><th>start</th><th>took</th><th>result</th></tr></thead><tbody>${
    rows.map(st => html`<tr class="${st.ok ? 'pass' : 'fail'}"><td>${st.index}</td><td>${st.kind}</td><td>${st.label}</td><td>${st.targets.join(', ')}</td>
      <td class="mono">${formatOffset(st.startedAt - s.startedAt)}</td><td class="mono">${formatSeconds(st.endedAt - st.startedAt)}</td>
      <td>${st.ok ? 'ok' : html`<strong>failed</strong>${st.error != null ? html`: ${st.error}` : ''}`}</td></tr>`)
  }</tbody></table>`
}

function failures (report: Report): Markup {
  const indexed = report.scenarios.map((s, i) => ({ s, i })).filter(({ s }) => isProblem(s.outcome))
  if (indexed.length === 0) return html`<section id="failures"><h2>Failures</h2><p class="ok-note">✔ No failed, errored or invalid scenario.</p></section>`
  return html`<section id="failures"><h2>Failures (${indexed.length})</h2>${indexed.map(({ s, i }) => html`
    <div class="failure-card ${s.outcome}" data-scenario="${s.name}">
      <h3>${badge(s.outcome)} <span class="mono">${s.name}</span> — ${s.title} <a href="#${anchor(i)}">details</a></h3>
      ${s.invalid != null ? html`<p><strong>Invalid run:</strong> ${s.invalid}</p>` : ''}
      ${s.reason != null ? html`<p><strong>Reason:</strong> ${s.reason}</p>` : ''}
      ${failedAssertions(s).length > 0 ? assertionsTable(s, true) : ''}
      ${stepsTable(s, true)}
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

function eventTable (s: ScenarioRecord): Markup {
  const shown = s.events.slice(0, EVENT_TABLE_LIMIT)
  const note = s.events.length > shown.length
    ? html`<p class="note">Showing the first ${shown.length} of ${s.events.length} events; the timeline above and report.json hold all of them.</p>`
    : ''
  return html`<details class="events"><summary>${plural(s.events.length, 'event')}</summary>${note}
    <table class="events"><thead><tr><th>time</th><th>node</th><th>event</th><th>details</th></tr></thead><tbody>${
      shown.map(e => html`<tr class="ev"><td class="mono">${formatOffset(e.time - s.startedAt)}</td><td>${e.node}</td>
        <td class="type"><i class="swatch fam-${eventFamily(e.type)}"></i>${e.type}</td><td class="detail">${describeEvent(e)}</td></tr>`)
    }</tbody></table></details>`
}

function faultsTable (s: ScenarioRecord): Markup {
  return html`<table class="faults"><thead><tr><th>step</th><th>link</th><th>fault</th><th>attributes</th><th>applied</th><th>removed</th></tr></thead><tbody>${
    s.faults.map(f => html`<tr><td>${f.step}</td><td class="mono">${f.link}</td><td>${f.kind}</td><td class="mono">${JSON.stringify(f.attributes)}</td>
      <td class="mono">${formatOffset(f.appliedAt - s.startedAt)}</td><td class="mono">${f.removedAt === null ? 'never' : formatOffset(f.removedAt - s.startedAt)}</td></tr>`)
  }</tbody></table>`
}

function recoveriesTable (s: ScenarioRecord): Markup {
  const at = (t: number | null): string => t === null ? '—' : formatOffset(t - s.startedAt)
  return html`<table class="recoveries"><thead><tr><th>node</th><th>failed</th><th>detected</th><th>recovered</th><th>automatic</th></tr></thead><tbody>${
    s.recoveries.map(r => html`<tr class="${r.automatic && r.recoveredAt !== null ? 'pass' : 'fail'}"><td>${r.node}</td><td class="mono">${at(r.failedAt)}</td>
      <td class="mono">${at(r.detectedAt)}</td><td class="mono">${at(r.recoveredAt)}</td><td>${r.automatic ? 'yes' : 'no'}</td></tr>`)
  }</tbody></table>`
}

function scenarioSection (s: ReportScenario, index: number): Markup {
  const facts: Array<[string, string]> = [
    ['title', s.title], ['mode', s.mode], ['seed', String(s.seed)], ['timeScale', String(s.timeScale)],
    ['duration', formatSeconds(s.durationMs)], ['started', formatIso(s.startedAt)],
    ...(s.planTest != null ? [['plan test', `Test ${s.planTest}`] as [string, string]] : []),
    ...(s.tags.length > 0 ? [['tags', s.tags.join(', ')] as [string, string]] : []),
    ...(s.file != null ? [['file', s.file] as [string, string]] : [])
  ]
  const series = s.sweep === undefined ? [] : sweepSeries(s.sweep)
  return html`<details class="scenario ${isProblem(s.outcome) ? 'problem' : ''}" id="${anchor(index)}" data-scenario="${s.name}" ${isProblem(s.outcome) ? html`open` : ''}>
    <summary>${s.summaryLine}</summary><div class="body">
    ${s.description !== '' ? html`<p>${s.description}</p>` : ''}
    <div class="facts">${facts.map(([k, v]) => html`<div>${k}: <b>${v}</b></div>`)}</div>
    ${s.invalid != null ? html`<p><strong>Invalid run:</strong> ${s.invalid}</p>` : ''}
    ${s.reason != null ? html`<p><strong>Reason:</strong> ${s.reason}</p>` : ''}
    <h4>Assertions</h4>${assertionsTable(s, false)}
    ${s.steps.length > 0 ? html`<h4>Steps</h4>${stepsTable(s, false)}` : ''}
    ${s.events.length + s.steps.length + s.faults.length > 0 ? html`<h4>Timeline</h4>${familyLegend()}${timelineSvg(s)}` : ''}
    ${s.matrix !== undefined ? html`<h4>Who sees whom</h4>${matrixSection(s.matrix, s.startedAt)}` : ''}
    ${s.faults.length > 0 ? html`<h4>Faults</h4>${faultsTable(s)}` : ''}
    ${s.recoveries.length > 0 ? html`<h4>Recoveries</h4>${recoveriesTable(s)}` : ''}
    ${series.map(sw => html`<h4>Sweep: ${sw.parameter}</h4>${sweepChart(sw)}`)}
    ${s.events.length > 0 ? html`<h4>Events</h4>${eventTable(s)}` : ''}
  </div></details>`
}

function scenariosSection (report: Report): Markup {
  const ordered = problemsFirst(report.scenarios.map((s, i) => ({ ...s, index: i })))
  return html`<section id="scenarios"><h2>Scenarios</h2>${ordered.map(s => scenarioSection(s, s.index))}</section>`
}

export function toHtml (report: Report): string {
  const { run, summary } = report
  const title = `chiral-sim ${run.id}: ${summary.passed}/${summary.total} passed`
  return `<!DOCTYPE html>\n${html`<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${trusted(STYLESHEET)}</style></head>
<body><main>
${header(report)}
${summaryBar(report)}
${failures(report)}
${kpiSection(report)}
${report.baseline !== undefined ? baselineSection(report.baseline) : ''}
${scenariosSection(report)}
<footer>Generated ${report.generatedAt} from the run record by chiral-sim ${run.versions.chiralSim}. report.json holds every event and can rebuild this page.</footer>
</main></body></html>`.html}\n`
}
