import { formatNumber } from './format.ts'
import { html, n, type Markup } from './html-markup.ts'
import { formatKpiValue, formatTarget, KPI_DEFINITIONS, kpiState, type Kpi } from './kpis.ts'
import type { SweepKpi, SweepSeries } from './sweep.ts'

/** The two charts of the page: a gauge per KPI against its target, and KPI-versus-parameter for sweeps. */

const GAUGE_WIDTH = 300
const GAUGE_HEIGHT = 54
const BAR_Y = 18
const BAR_HEIGHT = 14

/** Percentages fill 0–100; durations get room past the target so a miss is visibly past the line. */
function gaugeMax (kpi: Kpi): number {
  if (kpi.unit === '%') return 100
  return Math.max(kpi.target * 1.5, (kpi.value ?? 0) * 1.1)
}

/** Keeps a label inside the chart when its anchor is near an edge. */
const anchorFor = (x: number, width: number): string => x < width * 0.15 ? 'start' : x > width * 0.85 ? 'end' : 'middle'

export function kpiGauge (kpi: Kpi): Markup {
  const max = gaugeMax(kpi)
  const at = (v: number): number => Math.min(Math.max(v / max, 0), 1) * GAUGE_WIDTH
  const state = kpiState(kpi)
  const targetX = at(kpi.target)
  const fill = kpi.value === null
    ? html`<text class="gauge-empty" x="${GAUGE_WIDTH / 2}" y="${BAR_Y + 11}" text-anchor="middle">not measured</text>`
    : html`<rect class="gauge-fill ${state}" x="0" y="${BAR_Y}" width="${n(at(kpi.value))}" height="${BAR_HEIGHT}"><title>${formatKpiValue(kpi.value, kpi.unit)}</title></rect>`
  const baseline = kpi.baseline === undefined
    ? ''
    : html`<line class="gauge-baseline" x1="${n(at(kpi.baseline))}" x2="${n(at(kpi.baseline))}" y1="${BAR_Y - 4}" y2="${BAR_Y + BAR_HEIGHT + 4}"/>
      <text class="gauge-note" x="${n(at(kpi.baseline))}" y="${BAR_Y - 6}" text-anchor="${anchorFor(at(kpi.baseline), GAUGE_WIDTH)}">plan baseline ${formatKpiValue(kpi.baseline, kpi.unit)}</text>`
  return html`<svg class="gauge" viewBox="0 0 ${GAUGE_WIDTH} ${GAUGE_HEIGHT}" role="img" aria-label="${`${kpi.name}: ${formatKpiValue(kpi.value, kpi.unit)}, target ${formatTarget(kpi)}`}">
    <rect class="gauge-track" x="0" y="${BAR_Y}" width="${GAUGE_WIDTH}" height="${BAR_HEIGHT}"/>
    ${fill}${baseline}
    <line class="gauge-target" x1="${n(targetX)}" x2="${n(targetX)}" y1="${BAR_Y - 4}" y2="${BAR_Y + BAR_HEIGHT + 4}"/>
    <text class="gauge-note" x="${n(targetX)}" y="${BAR_Y + BAR_HEIGHT + 16}" text-anchor="${anchorFor(targetX, GAUGE_WIDTH)}">target ${formatTarget(kpi)}</text>
  </svg>`
}

const SWEEP_WIDTH = 680
const SWEEP_HEIGHT = 280
const M = { left: 52, right: 20, top: 20, bottom: 44 }
const SWEEP_LABEL: Record<SweepKpi, string> = { connectionSuccessRate: 'connection', discoverySuccessRate: 'discovery' }

export function sweepChart (series: SweepSeries): Markup {
  const values = series.points.map(p => p.value)
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const [x0, x1] = lo === hi ? [lo - 1, hi + 1] : [lo, hi]
  const yMax = Math.max(100, ...series.points.flatMap(p => [p.connectionSuccessRate ?? 0, p.discoverySuccessRate ?? 0]))
  const plotW = SWEEP_WIDTH - M.left - M.right
  const plotH = SWEEP_HEIGHT - M.top - M.bottom
  const x = (v: number): number => M.left + ((v - x0) / (x1 - x0)) * plotW
  const y = (v: number): number => M.top + (1 - v / yMax) * plotH

  const yTicks = [0, 25, 50, 75, 100].map(v => html`<line class="tick" x1="${M.left}" x2="${SWEEP_WIDTH - M.right}" y1="${n(y(v))}" y2="${n(y(v))}"/>
    <text class="tick-label" x="${M.left - 6}" y="${n(y(v) + 4)}" text-anchor="end">${v} %</text>`)
  const xTicks = [...new Set(values)].map(v => html`<text class="tick-label" x="${n(x(v))}" y="${SWEEP_HEIGHT - M.bottom + 16}" text-anchor="middle">${formatNumber(v)}</text>`)

  const lines = (Object.keys(SWEEP_LABEL) as SweepKpi[]).map(kpi => {
    const pts = series.points.filter(p => p[kpi] !== null)
    if (pts.length === 0) return ''
    const def = KPI_DEFINITIONS[kpi]
    return html`<g class="series series-${SWEEP_LABEL[kpi]}">
      <line class="target-line" x1="${M.left}" x2="${SWEEP_WIDTH - M.right}" y1="${n(y(def.target))}" y2="${n(y(def.target))}"><title>${`${SWEEP_LABEL[kpi]} target ${formatTarget(def)}`}</title></line>
      <polyline points="${pts.map(p => `${n(x(p.value))},${n(y(p[kpi] ?? 0))}`).join(' ')}"/>
      ${pts.map(p => html`<circle cx="${n(x(p.value))}" cy="${n(y(p[kpi] ?? 0))}" r="4"><title>${`${series.parameter} = ${formatNumber(p.value)}: ${SWEEP_LABEL[kpi]} ${formatKpiValue(p[kpi], '%')} (${p.samples} samples)`}</title></circle>`)}
    </g>`
  })

  const knees = series.knees.map((k, i) => {
    const kx = x(k.value)
    const nearRight = anchorFor(kx, SWEEP_WIDTH) === 'end'
    return html`<g class="knee">
    <line x1="${n(kx)}" x2="${n(kx)}" y1="${M.top}" y2="${SWEEP_HEIGHT - M.bottom}"/>
    <text x="${n(nearRight ? kx - 4 : kx + 4)}" y="${M.top + 12 + i * 14}" text-anchor="${nearRight ? 'end' : 'start'}">${`knee: ${SWEEP_LABEL[k.kpi]} ${formatKpiValue(k.kpiValue, '%')} at ${series.parameter} = ${formatNumber(k.value)}`}</text>
  </g>`
  })

  return html`<svg class="sweep" viewBox="0 0 ${SWEEP_WIDTH} ${SWEEP_HEIGHT}" role="img" aria-label="${`KPIs against ${series.parameter}`}">
    ${yTicks}${xTicks}
    <text class="axis-label" x="${M.left + plotW / 2}" y="${SWEEP_HEIGHT - 8}" text-anchor="middle">${series.parameter}</text>
    ${lines}${knees}</svg>
    <div class="legend"><span><i class="swatch series-connection"></i>connection success rate</span><span><i class="swatch series-discovery"></i>discovery success rate</span><span><i class="swatch knee-swatch"></i>knee (first value below target)</span></div>`
}
