import { z } from 'zod'
import type { NodeEvent, NodeEventOf, NodeEventType } from '../nodes/events.ts'
import type { RunRecord, ScenarioRecord, StepRecord } from '../sim/record.ts'
import { formatNumber, formatSeconds, plural } from './format.ts'
import {
  ComparatorSchema, KPI_DEFINITIONS, KpiIdSchema, KpiUnitSchema, meets, type Comparator, type KpiDefinition, type KpiId, type KpiUnit
} from '../sim/kpi-targets.ts'

/**
 * The plan's five KPIs ("Success Metrics & KPIs"), computed from the RunRecord alone. A KPI nothing in the run
 * measured is `null` / "not measured": an empty run must never look like a healthy one.
 */

export { KpiIdSchema, ComparatorSchema, KpiUnitSchema, KPI_DEFINITIONS, meets, type KpiId, type Comparator, type KpiUnit, type KpiDefinition }
export const KPI_IDS: readonly KpiId[] = KpiIdSchema.options

export const KpiSchema = z.object({
  id: KpiIdSchema,
  name: z.string(),
  value: z.number().nullable(),
  unit: KpiUnitSchema,
  target: z.number(),
  comparator: ComparatorSchema,
  /** null = not measured; a KPI without samples is never "met". */
  met: z.boolean().nullable(),
  samples: z.number().int().min(0),
  /** The plan's pre-implementation figure, when it gives a finite one. */
  baseline: z.number().optional(),
  detail: z.string()
}).refine(k => k.samples === 0 ? k.value === null && k.met === null : k.value !== null && k.met !== null, {
  message: 'a KPI has a value and a met flag exactly when it has samples'
})
export type Kpi = z.infer<typeof KpiSchema>

export const KpisSchema = z.object({
  connectionSuccessRate: KpiSchema,
  timeToFailureDetectionMs: KpiSchema,
  bootstrapAvailability: KpiSchema,
  discoverySuccessRate: KpiSchema,
  autoRecoveryRate: KpiSchema
})
export type Kpis = z.infer<typeof KpisSchema>

/** How much worse `after` is than `before` (positive = worse): higher is better for > and >=, lower for < and <=. */
export function worseBy (comparator: Comparator, before: number, after: number): number {
  return comparator === '>' || comparator === '>=' ? before - after : after - before
}

export function formatKpiValue (value: number | null, unit: KpiUnit): string {
  if (value === null) return 'not measured'
  return unit === '%' ? `${formatNumber(value)} %` : formatSeconds(value)
}

export const formatTarget = (kpi: Pick<Kpi, 'comparator' | 'target' | 'unit'>): string =>
  `${kpi.comparator} ${formatKpiValue(kpi.target, kpi.unit)}`

export type KpiState = 'met' | 'unmet' | 'unmeasured'
export const kpiState = (kpi: Pick<Kpi, 'met'>): KpiState => kpi.met === null ? 'unmeasured' : kpi.met ? 'met' : 'unmet'
const VERDICT: Record<KpiState, string> = { met: 'met', unmet: 'not met', unmeasured: 'not measured' }
export const kpiVerdict = (kpi: Pick<Kpi, 'met'>): string => VERDICT[kpiState(kpi)]

/** One line per KPI for logs and CI properties, e.g. "90 % (target > 95 %, 10 samples, not met)". */
export const describeKpi = (kpi: Kpi): string =>
  `${formatKpiValue(kpi.value, kpi.unit)} (target ${formatTarget(kpi)}, ${plural(kpi.samples, 'sample')}, ${kpiVerdict(kpi)})`

function kpi (id: KpiId, value: number | null, samples: number, detail: string, forceUnmet = false): Kpi {
  const def = KPI_DEFINITIONS[id]
  const measured = samples > 0 && value !== null
  return {
    id,
    ...def,
    value: measured ? value : null,
    met: measured ? !forceUnmet && meets(value, def.target, def.comparator) : null,
    samples: measured ? samples : 0,
    detail
  }
}

function rateKpi (id: KpiId, successes: number, samples: number, detail: string): Kpi {
  return kpi(id, samples === 0 ? null : (successes / samples) * 100, samples, detail)
}

const EXPECTED_FAILURE_TAG = 'expected-failure'
const isExpectedFailure = (s: ScenarioRecord): boolean => s.tags.includes(EXPECTED_FAILURE_TAG)

function eventsOf<T extends NodeEventType> (scenarios: readonly ScenarioRecord[], type: T): Array<NodeEventOf<T>> {
  return scenarios.flatMap(s => s.events.filter((e): e is NodeEventOf<T> => e.type === type))
}

const count = <T>(items: readonly T[], predicate: (item: T) => boolean): number => items.filter(predicate).length

/** A note appended to every KPI's detail so a reader knows what was left out and why. */
function exclusionNote (invalid: number, expectedFailure?: number): string {
  const notes = []
  if (invalid > 0) notes.push(`${plural(invalid, 'invalid scenario')} (results not trusted)`)
  if (expectedFailure != null && expectedFailure > 0) {
    notes.push(`${plural(expectedFailure, 'scenario')} tagged ${EXPECTED_FAILURE_TAG}`)
  }
  return notes.length === 0 ? '' : `; excludes ${notes.join(' and ')}`
}

function connectionSuccessRate (trusted: readonly ScenarioRecord[], invalid: number): Kpi {
  // Scenarios tagged expected-failure point at a dead bootstrap on purpose; their failed attempts are the
  // behaviour under test (Test 2), not a reliability problem.
  // A connection attempt in the plan's sense is the user's "Connect" (its ~70 % baseline counts hangs and
  // timeouts of that), so it is one connect:done — retries and failover to another bootstrap included.
  const excluded = trusted.filter(isExpectedFailure)
  const results = eventsOf(trusted.filter(s => !isExpectedFailure(s)), 'connect:done')
  const ok = count(results, r => r.success)
  return rateKpi('connectionSuccessRate', ok, results.length,
    `${ok}/${results.length} connection attempts (connect:done, retries and failover included) succeeded${exclusionNote(invalid, excluded.length)}`)
}

const FAILURE_STEP_KINDS = new Set(['stop', 'kill', 'fault'])
// Toxics that slow a link without cutting it: nothing should turn red, so they are not failures to detect.
const DEGRADATION_FAULT_KINDS = new Set(['latency', 'jitter', 'bandwidth', 'slow_close', 'slicer'])

const bootstrapNames = (s: ScenarioRecord): Set<string> => new Set(s.nodes.filter(n => n.role === 'bootstrap').map(n => n.name))

function bootstrapFailureSteps (s: ScenarioRecord, bootstraps: ReadonlySet<string>): StepRecord[] {
  const isOutage = (step: StepRecord): boolean => {
    if (step.kind !== 'fault') return true
    const faults = s.faults.filter(f => f.step === step.index)
    return faults.length === 0 || faults.some(f => !DEGRADATION_FAULT_KINDS.has(f.kind))
  }
  // A stop/kill step that itself failed did not take the bootstrap down, so there was nothing to detect.
  return s.steps.filter(step =>
    FAILURE_STEP_KINDS.has(step.kind) && step.ok && step.targets.some(t => bootstraps.has(t)) && isOutage(step))
}

/**
 * The events by which the system notices a dead bootstrap: a peer's health indicator turning red or a failed
 * attempt, or the bootstrap's supervisor restarting it or alerting the operator (a crash repaired before the peers'
 * next 30 s check was still detected, by the supervisor).
 */
function isDetection (event: NodeEvent, bootstraps: ReadonlySet<string>): boolean {
  if (bootstraps.has(event.node)) return event.type === 'supervisor:restart' || event.type === 'supervisor:alert'
  return (event.type === 'health:status' && event.to === 'red') ||
    (event.type === 'connect:result' && event.outcome !== 'success')
}

interface Detection { scenario: string, step: StepRecord, measuredMs: number, planMs: number, timeScale: number, detected: boolean }

function detectionsIn (s: ScenarioRecord): Detection[] {
  const bootstraps = bootstrapNames(s)
  // A dead bootstrap cannot notice its own death: only the peers' events and its supervisor's count as detection.
  return bootstrapFailureSteps(s, bootstraps).map(step => {
    const first = s.events
      .filter(e => e.time >= step.startedAt && isDetection(e, bootstraps))
      .reduce<number | null>((min, e) => min === null ? e.time : Math.min(min, e.time), null)
    const detected = first !== null
    // Undetected: the observed window is a lower bound on the detection time.
    const measuredMs = (first ?? s.endedAt) - step.startedAt
    return { scenario: s.name, step, measuredMs, planMs: measuredMs / s.timeScale, timeScale: s.timeScale, detected }
  })
}

function timeToFailureDetection (trusted: readonly ScenarioRecord[], invalid: number): Kpi {
  const detections = trusted.flatMap(detectionsIn)
  if (detections.length === 0) {
    return kpi('timeToFailureDetectionMs', null, 0,
      `no stop, kill or outage fault of a bootstrap in this run${exclusionNote(invalid)}`)
  }
  const worst = detections.reduce((a, b) => b.planMs > a.planMs ? b : a)
  const undetected = detections.filter(d => !d.detected)
  const parts = [
    `worst of ${plural(detections.length, 'bootstrap failure')}: ${formatSeconds(worst.planMs)} ` +
      `(${worst.scenario} step ${worst.step.index} "${worst.step.label}": ${formatSeconds(worst.measuredMs)} measured at timeScale ${worst.timeScale})`,
    'measured durations are divided by each scenario\'s timeScale to give plan-equivalent real time'
  ]
  if (undetected.length > 0) {
    parts.push(`${undetected.length} never detected before the scenario ended (counted at the observed window, a lower bound): not met`)
  }
  return kpi('timeToFailureDetectionMs', worst.planMs, detections.length, parts.join('; ') + exclusionNote(invalid), undetected.length > 0)
}

function bootstrapAvailability (trusted: readonly ScenarioRecord[], invalid: number): Kpi {
  const checks = eventsOf(trusted, 'health:check')
  const up = count(checks, c => c.health.isReachable)
  return rateKpi('bootstrapAvailability', up, checks.length,
    `${up}/${checks.length} health checks found the bootstrap reachable, including checks made while a scenario had ` +
    `stopped or faulted a bootstrap on purpose${exclusionNote(invalid)}`)
}

const BIDIRECTIONAL_ASSERTION_PREFIX = 'bidirectional'

function discoverySuccessRate (trusted: readonly ScenarioRecord[], invalid: number): Kpi {
  // The plan's target is "100 % (when bootstrap is healthy)": a scenario pointing at a dead bootstrap on purpose
  // cannot discover anyone, and counting it would make the target unreachable by construction.
  const excluded = trusted.filter(isExpectedFailure)
  const healthy = trusted.filter(s => !isExpectedFailure(s))
  const statuses = eventsOf(healthy, 'discovery:status')
  // A first peer alone on the network reports overall 'verified', and counts as a success.
  const verified = count(statuses, e => e.status.overall === 'verified')
  const bidirectional = healthy.flatMap(s => s.assertions.filter(a => a.id.startsWith(BIDIRECTIONAL_ASSERTION_PREFIX)))
  const mutual = count(bidirectional, a => a.passed)
  return rateKpi('discoverySuccessRate', verified + mutual, statuses.length + bidirectional.length,
    `${verified}/${statuses.length} discovery verifications ended 'verified' and ${mutual}/${bidirectional.length} ` +
    `bidirectional-discovery checks passed${exclusionNote(invalid, excluded.length)}`)
}

function autoRecoveryRate (trusted: readonly ScenarioRecord[], invalid: number): Kpi {
  const recoveries = trusted.flatMap(s => s.recoveries)
  const automatic = count(recoveries, r => r.automatic && r.recoveredAt != null)
  return rateKpi('autoRecoveryRate', automatic, recoveries.length,
    recoveries.length === 0
      ? `no bootstrap failure handled by a supervisor in this run${exclusionNote(invalid)}`
      : `${automatic}/${recoveries.length} bootstrap failures recovered automatically${exclusionNote(invalid)}`)
}

export function computeKpis (record: RunRecord): Kpis {
  // An invalid scenario's measurements cannot be trusted (e.g. traffic went around a fault), so no KPI uses them.
  const trusted = record.scenarios.filter(s => s.invalid == null)
  const invalid = record.scenarios.length - trusted.length
  return {
    connectionSuccessRate: connectionSuccessRate(trusted, invalid),
    timeToFailureDetectionMs: timeToFailureDetection(trusted, invalid),
    bootstrapAvailability: bootstrapAvailability(trusted, invalid),
    discoverySuccessRate: discoverySuccessRate(trusted, invalid),
    autoRecoveryRate: autoRecoveryRate(trusted, invalid)
  }
}
