import type { NodeEvent } from '../nodes/events.ts'

/** Formatting shared by the text summary, the JUnit file and the HTML page, so all three read the same. */

export const formatSeconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

/** Time since the scenario started, with millisecond resolution for ordering close events. */
export const formatOffset = (ms: number): string => `${ms < 0 ? '-' : '+'}${(Math.abs(ms) / 1000).toFixed(3)}s`

export function formatIso (ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms)
}

/** Up to two decimals without trailing zeros: 99.88 must not be shown as a 99.9 that seems to meet a > 99.9 target. */
export function formatNumber (value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(2)))
}

export const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`

export function truncate (value: string, max: number): string {
  return value.length <= max ? value : `${value.slice(0, max - 1)}…`
}

const EVENT_ENVELOPE = new Set(['seq', 'time', 'node', 'type'])

/** An event's payload as `key=value` pairs, for hover titles and the event table. */
export function describeEvent (event: NodeEvent, max = 400): string {
  const parts = Object.entries(event)
    .filter(([key]) => !EVENT_ENVELOPE.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  return truncate(parts.join(', '), max)
}
