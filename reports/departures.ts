import type { ScenarioRecord } from '../scenarios/record.ts'

type Span = { start: number, end: number }

/**
 * Which of a scenario's nodes were down at some moment of a span, read back from the record: a node is down before
 * its first `node:started`, and from each `node:stopped` (its own, or the runner's for a node killed without a word
 * and for external nodes) to its next `node:started`. Keyed by peer ID, as a verification names the peers it
 * dialled; a peer that is not one of the scenario's nodes is never taken as departed. The record is indexed once.
 */
export function departures (s: ScenarioRecord): (span: Span) => (peerId: string) => boolean {
  const names = new Map(s.nodes.filter(n => n.peerId != null).map(n => [n.name, n.peerId!]))
  const lifecycle = new Map<string, Array<{ time: number, up: boolean }>>([...names.values()].map(p => [p, []]))
  for (const e of s.events) {
    if (e.type !== 'node:started' && e.type !== 'node:stopped') continue
    const peerId = names.get(e.node)
    if (peerId != null) lifecycle.get(peerId)!.push({ time: e.time, up: e.type === 'node:started' })
  }
  for (const list of lifecycle.values()) list.sort((a, b) => a.time - b.time)
  return span => peerId => {
    const list = lifecycle.get(peerId)
    if (list == null) return false
    // Up at the span's start (the state its last event before it left), and up throughout (no stop inside it).
    const upAtStart = list.filter(e => e.time < span.start).at(-1)?.up === true
    return !upAtStart || list.some(e => !e.up && e.time >= span.start && e.time <= span.end)
  }
}
