import type { NodeEvent } from '../nodes/events.ts'
import { toPlanMs } from '../nodes/timing.ts'

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

/**
 * Event payload durations that stand for plan time: outages and the plan's timeouts and intervals, which a run at
 * timeScale 0.1 lives through ten times faster. Payloads carry real ms (nodes/events.ts); the report's time base is
 * plan time, so these also show their plan value. Latencies and measured round trips are real at any scale
 * (nodes/timing.ts, UNSCALED) and are shown as they are.
 */
const PLAN_SPANS = new Set(['downtimeMs', 'unreachableForMs', 'timeoutMs', 'remainingMs', 'intervalMs'])

/**
 * An event's payload as `key=value` pairs, for hover titles and the event table. With the scenario's timeScale, a
 * plan span reads `downtimeMs=3000 (plan 30.0s)`.
 */
export function describeEvent (event: NodeEvent, max = 400, timeScale = 1): string {
  const parts = Object.entries(event)
    .filter(([key]) => !EVENT_ENVELOPE.has(key))
    .map(([key, value]) => {
      const text = `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`
      return timeScale !== 1 && PLAN_SPANS.has(key) && typeof value === 'number' ? `${text} (plan ${formatSeconds(toPlanMs(value, timeScale))})` : text
    })
  return truncate(parts.join(', '), max)
}

/**
 * The report's one time base inside a scenario: plan time, i.e. real time since the scenario started converted by
 * the one rule (nodes/timing.ts). At timeScale 0.1 a bootstrap that was down for 3 real seconds reads as the
 * plan's 30 s.
 */
export const planOffsetMs = (s: { startedAt: number, timeScale: number }, time: number): number => toPlanMs(time - s.startedAt, s.timeScale)

/** A moment of a scenario in plan time, e.g. "+31.000s". */
export const formatPlanOffset = (s: { startedAt: number, timeScale: number }, time: number): string => formatOffset(planOffsetMs(s, time))

/** How plan time relates to the clock, said once per scenario and on every timeline. */
export function describeTimeBase (timeScale: number): string {
  if (timeScale === 1) return 'times are plan time, which is real time here (timeScale 1)'
  return `times are plan time: real time × ${formatNumber(1 / timeScale)} (timeScale ${timeScale}; 1 s of the run = ${formatNumber(1 / timeScale)} s of the plan)`
}
