import type { NodeEvent, NodeEventType } from '../nodes/events.ts'
import type { ScenarioRecord } from '../sim/record.ts'
import { describeEvent, formatNumber, formatOffset } from './format.ts'
import { html, n, type Markup } from './html-markup.ts'

/**
 * The per-node timeline: one swim-lane per node, events as marks coloured by family, steps as vertical markers.
 * It answers "what did each node see, and when, relative to what the scenario did".
 */

export const EVENT_FAMILIES = ['connect', 'health', 'discovery', 'file', 'fault', 'node'] as const
export type EventFamily = typeof EVENT_FAMILIES[number]

const FAMILY_BY_PREFIX: Record<string, EventFamily> = {
  connect: 'connect', connection: 'connect', dial: 'connect', bootstrap: 'connect',
  health: 'health', monitor: 'health', external: 'health',
  discovery: 'discovery', peer: 'discovery', routing: 'discovery', dht: 'discovery',
  file: 'file',
  node: 'node', log: 'node'
}

export function eventFamily (type: NodeEventType): EventFamily {
  return FAMILY_BY_PREFIX[type.split(':')[0] ?? ''] ?? 'node'
}

const WIDTH = 1000
const LABEL_WIDTH = 120
const RIGHT_PAD = 12
const AXIS_HEIGHT = 26
const LANE_HEIGHT = 24
const MARK_WIDTH = 3
const MARK_HEIGHT = 14
const FAULT_LANE = 'faults (links)'

export function familyLegend (): Markup {
  return html`<div class="legend">${EVENT_FAMILIES.map(f => html`<span><i class="swatch fam-${f}"></i>${f}</span>`)}
    <span><i class="swatch step-swatch"></i>step</span></div>`
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

const eventTitle = (e: NodeEvent, t0: number): string => `${formatOffset(e.time - t0)} ${e.node} ${e.type}\n${describeEvent(e)}`

export function timelineSvg (s: ScenarioRecord): Markup {
  const t0 = s.startedAt
  // reduce, not Math.max(...): a spread of tens of thousands of events overflows the call stack.
  const lastTime = [...s.events.map(e => e.time), ...s.steps.map(st => st.endedAt)].reduce((a, b) => Math.max(a, b), s.endedAt)
  const span = Math.max(lastTime - t0, 1)
  const lanes = laneNames(s)
  const allLanes = s.faults.length > 0 ? [...lanes, FAULT_LANE] : lanes
  const height = AXIS_HEIGHT + allLanes.length * LANE_HEIGHT + 6
  const x = (time: number): number => LABEL_WIDTH + ((time - t0) / span) * (WIDTH - LABEL_WIDTH - RIGHT_PAD)
  const laneY = (name: string): number => AXIS_HEIGHT + allLanes.indexOf(name) * LANE_HEIGHT
  const bottom = AXIS_HEIGHT + allLanes.length * LANE_HEIGHT

  const axis = ticks(span).map(t => html`<line class="tick" x1="${n(x(t0 + t))}" x2="${n(x(t0 + t))}" y1="${AXIS_HEIGHT - 4}" y2="${bottom}"/>
    <text class="tick-label" x="${n(x(t0 + t))}" y="${AXIS_HEIGHT - 8}" text-anchor="middle">${formatNumber(t / 1000)}s</text>`)

  const laneRows = allLanes.map((name, i) => html`<g>
    <rect class="lane ${i % 2 === 0 ? 'even' : 'odd'}" x="0" y="${laneY(name)}" width="${WIDTH}" height="${LANE_HEIGHT}"/>
    <text class="lane-label" x="6" y="${n(laneY(name) + LANE_HEIGHT / 2 + 4)}">${name}</text></g>`)

  const faults = s.faults.map(f => {
    const end = f.removedAt ?? lastTime
    return html`<rect class="mark fam-fault" x="${n(x(f.appliedAt))}" y="${n(laneY(FAULT_LANE) + 5)}" width="${n(Math.max(x(end) - x(f.appliedAt), MARK_WIDTH))}" height="${LANE_HEIGHT - 10}"><title>${
      `step ${f.step}: ${f.kind} on ${f.link} ${JSON.stringify(f.attributes)}\n${formatOffset(f.appliedAt - t0)} → ${f.removedAt === null ? 'end (never removed)' : formatOffset(f.removedAt - t0)}`
    }</title></rect>`
  })

  const marks = s.events.map(e => html`<rect class="mark fam-${eventFamily(e.type)}" x="${n(x(e.time) - MARK_WIDTH / 2)}" y="${n(laneY(e.node) + (LANE_HEIGHT - MARK_HEIGHT) / 2)}" width="${MARK_WIDTH}" height="${MARK_HEIGHT}"><title>${eventTitle(e, t0)}</title></rect>`)

  const steps = s.steps.map(st => html`<g class="step ${st.ok ? 'ok' : 'failed'}">
    <line x1="${n(x(st.startedAt))}" x2="${n(x(st.startedAt))}" y1="${AXIS_HEIGHT}" y2="${bottom}"/>
    <text x="${n(x(st.startedAt) + 2)}" y="${AXIS_HEIGHT + 9}">${st.index}</text>
    <title>${`step ${st.index} ${st.kind}: ${st.label}${st.targets.length > 0 ? ` → ${st.targets.join(', ')}` : ''}\n${formatOffset(st.startedAt - t0)} … ${formatOffset(st.endedAt - t0)} ${st.ok ? 'ok' : `FAILED ${st.error ?? ''}`}`}</title></g>`)

  return html`<svg class="timeline" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="${`timeline of ${s.name}`}">
    ${laneRows}${axis}${faults}${marks}${steps}</svg>`
}
