import type { NodeEvent } from '../nodes/events.ts'
import type { HealthStatus } from '../nodes/schemas.ts'
import type { ScenarioRecord } from '../scenarios/record.ts'
import { EVENT_FAMILIES, eventFamily, eventLabel, healthStatusOf } from './events.ts'
import { describeEvent, describeTimeBase, formatNumber, formatOffset, formatPlanOffset, planOffsetMs, truncate } from './format.ts'
import { html, n, type Markup } from './html-markup.ts'
import { nodeAnchor } from './html-nodes.ts'
import type { PeerNames } from './names.ts'

/**
 * The per-node timeline: one labelled lane per node, events as marks coloured by family, health checks coloured by
 * the status they found, faults as spans, steps as numbered markers, all on the plan's time axis. It is meant to be
 * read without hovering: state changes carry a text label, steps their label; the hover title only adds detail.
 */

const WIDTH = 1000
const LABEL_WIDTH = 128
const RIGHT_PAD = 14
const AXIS_HEIGHT = 30
const STEP_ROW = 13
const STEP_ROWS = 4
const LANE_HEIGHT = 46
const LABEL_ROWS = 2
const MARK_TOP = 4
const MARK_HEIGHT = 14
const HEALTH_HEIGHT = 20
const MARK_WIDTH = 3
const FAULT_LANE = 'faults'
/** Hover detail per mark: the event tables below carry the rest, and thousands of marks add up. */
const TITLE_DETAIL_CHARS = 160
/** Text width estimate for 9.5 px labels: enough to avoid overlaps without measuring. */
const CHAR_WIDTH = 5.4

export function timelineLegend (): Markup {
  return html`<div class="legend">${EVENT_FAMILIES.map(f => html`<span><i class="swatch fam-${f}"></i>${f}</span>`)}
    <span><i class="swatch s-green"></i>health green</span><span><i class="swatch s-yellow"></i>yellow</span><span><i class="swatch s-red"></i>red</span>
    <span><i class="swatch down-swatch"></i>node down</span><span><i class="swatch step-swatch"></i>step</span></div>`
}

/** Nodes in the record's order, then any node that only appears in events, so no event is dropped. */
function laneNames (s: ScenarioRecord): string[] {
  return [...new Set([...s.nodes.map(node => node.name), ...s.events.map(e => e.node)])]
}

function ticks (spanMs: number): number[] {
  const steps = [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000]
  const step = steps.find(s => spanMs / s <= 10) ?? Math.ceil(spanMs / 10)
  return Array.from({ length: Math.floor(spanMs / step) + 1 }, (_, i) => i * step)
}

/**
 * Places labels left to right in a few rows, dropping one only when every row is taken at its place. A label that
 * would run past the right edge is moved left to end there.
 */
class Rows {
  readonly #ends: number[]
  constructor (rows: number) {
    this.#ends = Array.from({ length: rows }, () => -Infinity)
  }

  place (x: number, width: number): { row: number, x: number } | undefined {
    const at = Math.max(0, Math.min(x, WIDTH - RIGHT_PAD / 2 - width))
    const row = this.#ends.findIndex(end => at >= end + 4)
    if (row === -1) return undefined
    this.#ends[row] = at + width
    return { row, x: at }
  }
}

/**
 * Periods in which a node was down: from its stop or crash (a `node:stopped` event, a kill or stop step on it, a
 * failure its supervisor recorded; a killed process says nothing itself) to its next start, successful restart or
 * recovery (or the end).
 */
function downSpans (s: ScenarioRecord, node: string, end: number): Array<[number, number]> {
  const ups = [
    ...s.events.filter(e => e.node === node && (e.type === 'node:started' || e.type === 'supervisor:recovered' || (e.type === 'supervisor:restart' && e.ok))).map(e => e.time),
    ...s.recoveries.filter(r => r.node === node && r.recoveredAt !== null).map(r => r.recoveredAt!)
  ].sort((a, b) => a - b)
  const downs = [
    ...s.events.filter(e => e.node === node && e.type === 'node:stopped').map(e => e.time),
    ...s.steps.filter(st => (st.kind === 'kill' || st.kind === 'stop') && st.targets.includes(node)).map(st => st.startedAt),
    ...s.recoveries.filter(r => r.node === node).map(r => r.failedAt)
  ].sort((a, b) => a - b)
  const spans: Array<[number, number]> = []
  for (const from of downs) {
    if (spans.length > 0 && from <= spans[spans.length - 1]![1]) continue
    spans.push([from, ups.find(t => t > from) ?? end])
  }
  return spans
}

export function timelineSvg (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const t0 = s.startedAt
  // reduce, not Math.max(...): a spread of tens of thousands of events overflows the call stack.
  const lastTime = [...s.events.map(e => e.time), ...s.steps.map(st => st.endedAt), ...s.faults.map(f => f.removedAt ?? 0)]
    .reduce((a, b) => Math.max(a, b), s.endedAt)
  const span = Math.max(planOffsetMs(s, lastTime), 1)
  const lanes = laneNames(s)
  const roles = new Map(s.nodes.map(node => [node.name, node.role]))
  const allLanes = s.faults.length > 0 ? [...lanes, FAULT_LANE] : lanes
  const top = AXIS_HEIGHT + STEP_ROW * STEP_ROWS
  const bottom = top + allLanes.length * LANE_HEIGHT
  const height = bottom + 6
  const x = (time: number): number => LABEL_WIDTH + (planOffsetMs(s, time) / span) * (WIDTH - LABEL_WIDTH - RIGHT_PAD)
  const laneY = (name: string): number => top + allLanes.indexOf(name) * LANE_HEIGHT
  const real = (time: number): string => s.timeScale === 1 ? '' : ` (real ${formatOffset(time - t0)})`

  const axis = ticks(span).map(t => {
    const tx = LABEL_WIDTH + (t / span) * (WIDTH - LABEL_WIDTH - RIGHT_PAD)
    return html`<line class="tick" x1="${n(tx)}" x2="${n(tx)}" y1="${AXIS_HEIGHT - 4}" y2="${bottom}"/>
    <text class="tick-label" x="${n(tx)}" y="${AXIS_HEIGHT - 8}" text-anchor="middle">${formatNumber(t / 1000)} s</text>`
  })
  const axisTitle = html`<text class="axis-title" x="4" y="${AXIS_HEIGHT - 8}">plan time${s.timeScale === 1 ? '' : ` (×${formatNumber(1 / s.timeScale)})`}</text>`

  const laneRows = allLanes.map((name, i) => {
    const y = laneY(name)
    const role = name === FAULT_LANE ? 'links' : roles.get(name) ?? ''
    const label = name === FAULT_LANE
      ? html`<text class="lane-label" x="6" y="${n(y + LANE_HEIGHT / 2 + 4)}">${name}</text>`
      : html`<a href="#${nodeAnchor(index, name)}"><text class="lane-label" x="6" y="${n(y + LANE_HEIGHT / 2)}">${truncate(name, 18)}</text></a>`
    return html`<g class="lane-row" data-lane="${name}">
    <rect class="lane ${i % 2 === 0 ? 'even' : 'odd'}" x="0" y="${y}" width="${WIDTH}" height="${LANE_HEIGHT}"/>
    ${label}${name === FAULT_LANE ? '' : html`<text class="lane-role" x="6" y="${n(y + LANE_HEIGHT / 2 + 11)}">${role}</text>`}</g>`
  })

  const down = lanes.flatMap(name => downSpans(s, name, lastTime).map(([from, to]) => html`<rect class="down" x="${n(x(from))}" y="${laneY(name) + 1}" width="${n(Math.max(x(to) - x(from), 1))}" height="${LANE_HEIGHT - 2}"><title>${`${name} down ${formatPlanOffset(s, from)} → ${formatPlanOffset(s, to)} (plan ${formatNumber(planOffsetMs(s, to) / 1000 - planOffsetMs(s, from) / 1000)} s)`}</title></rect>`))

  const faultRows = new Rows(1)
  const faults = s.faults.map(f => {
    const end = f.removedAt ?? lastTime
    const fx = x(f.appliedAt)
    const w = Math.max(x(end) - fx, MARK_WIDTH)
    const y = laneY(FAULT_LANE)
    const text = `${f.kind} ${names.named(f.link)}`
    const place = faultRows.place(fx + 2, text.length * CHAR_WIDTH)
    return html`<g class="fault-span"><rect class="mark fam-fault" x="${n(fx)}" y="${n(y + MARK_TOP)}" width="${n(w)}" height="${MARK_HEIGHT}"><title>${
      `step ${f.step}: ${f.kind} on ${names.named(f.link)} ${JSON.stringify(f.attributes)}\n${formatPlanOffset(s, f.appliedAt)} → ${f.removedAt === null ? 'end (never removed)' : formatPlanOffset(s, f.removedAt)}`
    }</title></rect>${place === undefined ? '' : html`<text class="mark-label" x="${n(place.x)}" y="${n(y + MARK_TOP + MARK_HEIGHT + 12)}">${text}</text>`}</g>`
  })

  // Events closer than a mark's width share one mark (its title counts them): a chatty node cannot grow the page
  // without bound, and a red check is never drawn under a green one (health marks of each status stay apart, red last).
  const bins = new Map<string, { e: NodeEvent[], status: HealthStatus | undefined, cls: string }>()
  for (const e of s.events) {
    const status = healthStatusOf(e)
    const cls = status === undefined ? `fam-${eventFamily(e.type)}` : `health s-${status}`
    const key = `${e.node}\u0000${Math.round(x(e.time) / MARK_WIDTH)}\u0000${cls}`
    const bin = bins.get(key)
    if (bin === undefined) bins.set(key, { e: [e], status, cls })
    else bin.e.push(e)
  }
  const drawOrder = (status: HealthStatus | undefined): number => status === undefined ? 0 : status === 'red' ? 3 : status === 'yellow' ? 2 : 1
  const marks = [...bins.values()].sort((a, b) => drawOrder(a.status) - drawOrder(b.status)).map(({ e: group, status, cls }) => {
    const first = group[0]!
    const last = group[group.length - 1]!
    const ex = x(first.time)
    const y = laneY(first.node)
    const title = group.length === 1
      ? `${formatPlanOffset(s, first.time)}${real(first.time)} ${first.node} ${first.type}${status !== undefined ? ` (${status})` : ''}\n${names.named(describeEvent(first, TITLE_DETAIL_CHARS, s.timeScale))}`
      : `${group.length} events of ${first.node}, ${formatPlanOffset(s, first.time)} … ${formatPlanOffset(s, last.time)}${status !== undefined ? ` (${status})` : ''}\n${
        [...Map.groupBy(group, ev => ev.type)].map(([type, evs]) => `${type} ×${evs.length}`).join(', ')}`
    const count = group.length === 1 ? '' : html` data-n="${group.length}"`
    return status === undefined
      ? html`<rect class="mark ${cls}"${count} x="${n(ex - MARK_WIDTH / 2)}" y="${y + MARK_TOP + 3}" width="${MARK_WIDTH}" height="${MARK_HEIGHT - 3}"><title>${title}</title></rect>`
      : html`<rect class="mark ${cls}"${count} data-status="${status}" x="${n(ex - MARK_WIDTH / 2)}" y="${y + MARK_TOP - 2}" width="${MARK_WIDTH}" height="${HEALTH_HEIGHT}"><title>${title}</title></rect>`
  })

  const laneLabels = new Map(lanes.map(name => [name, new Rows(LABEL_ROWS)]))
  const labels = s.events.map(e => {
    const text = eventLabel(e, names)
    if (text === undefined) return ''
    const place = laneLabels.get(e.node)?.place(x(e.time) + 2, text.length * CHAR_WIDTH)
    return place === undefined ? '' : html`<text class="mark-label${healthStatusOf(e) === 'red' ? ' s-red' : ''}" x="${n(place.x)}" y="${laneY(e.node) + MARK_TOP + HEALTH_HEIGHT + 9 + place.row * 11}">${text}</text>`
  })

  // Every step's number in the first row (steps closer than their numbers share one: "3–5"), its label in the rows
  // below where there is room; the steps table above has the rest.
  const numberGroups: Array<{ x: number, indices: number[], failed: boolean }> = []
  const groupText = (g: { indices: number[] }): string => g.indices.length > 2
    ? `${g.indices[0]}–${g.indices[g.indices.length - 1]}`
    : g.indices.join(',')
  for (const st of s.steps) {
    const sx = x(st.startedAt) + 2
    const last = numberGroups[numberGroups.length - 1]
    if (last !== undefined && sx < last.x + groupText(last).length * CHAR_WIDTH + 3) {
      last.indices.push(st.index)
      last.failed ||= !st.ok
    } else {
      numberGroups.push({ x: sx, indices: [st.index], failed: !st.ok })
    }
  }
  const numbers = numberGroups.map(g => html`<text class="step-number${g.failed ? ' failed' : ''}" x="${n(g.x)}" y="${AXIS_HEIGHT + 10}">${groupText(g)}</text>`)
  const labelRows = new Rows(STEP_ROWS - 1)
  const steps = s.steps.map(st => {
    const sx = x(st.startedAt)
    const text = `${st.index} ${truncate(st.label, 40)}`
    const label = labelRows.place(sx + 2, text.length * CHAR_WIDTH)
    return html`<g class="step ${st.ok ? 'ok' : 'failed'}" data-step="${st.index}">
    <line x1="${n(sx)}" x2="${n(sx)}" y1="${AXIS_HEIGHT + 2}" y2="${bottom}"/>
    ${label === undefined ? '' : html`<text x="${n(label.x)}" y="${AXIS_HEIGHT + (label.row + 1) * STEP_ROW + 10}">${text}</text>`}
    <title>${`step ${st.index} ${st.kind}: ${st.label}${st.targets.length > 0 ? ` → ${st.targets.join(', ')}` : ''}\n${formatPlanOffset(s, st.startedAt)} … ${formatPlanOffset(s, st.endedAt)} ${st.ok ? 'ok' : `FAILED ${st.error ?? ''}`}`}</title></g>`
  })

  return html`<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${`timeline of ${s.name}; ${describeTimeBase(s.timeScale)}`}">
    ${laneRows}${axis}${axisTitle}${down}${faults}${marks}${labels}${steps}<g class="step-numbers">${numbers}</g></svg>
    <p class="muted time-base">${describeTimeBase(s.timeScale)}.</p>`
}
