import { z } from 'zod'
import type { NodeEvent, NodeEventOf, NodeEventType } from '../nodes/events.ts'
import type { RunRecord, ScenarioRecord, StepRecord } from '../scenarios/record.ts'
import { formatNumber, formatSeconds, plural } from './format.ts'
import { toPlanMs, toRealMs } from '../nodes/timing.ts'
import { departures } from './departures.ts'
import { judgeWithDepartures } from '../nodes/discovery-verdict.ts'
import type { DiscoveryStatus } from '../nodes/schemas.ts'
import { bootstrapNames, bootstrapOfAddress, checkIntervals, deliberateOutages, inDeliberateOutage, type Outage } from './outages.ts'
import {
  ComparatorSchema, KPI_DEFINITIONS, KpiIdSchema, KpiUnitSchema, meets, meetsTarget, type Comparator, type KpiDefinition, type KpiId, type KpiUnit
} from '../sim/kpi-targets.ts'

/**
 * The plan's five KPIs ("Success Metrics & KPIs"), computed from the RunRecord alone. A KPI nothing in the run
 * measured is `null` / "not measured": an empty run must never look like a healthy one. Interrupted and invalid
 * scenarios feed none of them; KPI_MEANINGS says what each one counts.
 */

export { KpiIdSchema, ComparatorSchema, KpiUnitSchema, KPI_DEFINITIONS, meets, type KpiId, type Comparator, type KpiUnit, type KpiDefinition }
export const KPI_IDS: readonly KpiId[] = KpiIdSchema.options

/**
 * What each KPI measures and which scenarios feed it, in the words the report and the README use. The plan's
 * definitions ("Success Metrics & KPIs"), applied to a run that also makes outages on purpose.
 */
export const KPI_MEANINGS: Record<KpiId, string> = {
  connectionSuccessRate: 'Share of user-level connects (retries and failover included) that succeeded. Scenarios tagged expected-failure (pointed at a dead bootstrap on purpose) are left out.',
  timeToFailureDetectionMs: 'Worst time, in plan time, from a bootstrap failure (a stop or kill of a bootstrap or an external bootstrap, or an outage fault on a link to one) to the first red indicator or failed attempt of a peer cut off from it, or its supervisor\'s restart or alert. A failure that ended before one check interval plus the 5 s ping deadline, undetected, is too short to time and is not counted; one never detected in a longer window counts as not met.',
  bootstrapAvailability: 'Share of health checks that found the bootstrap reachable under normal operation: checks made while a scenario had stopped, killed, cut off or slowed a bootstrap on purpose (until it was back, plus one check interval) are left out, as are expected-failure scenarios.',
  discoverySuccessRate: 'Share of discovery checks that succeeded while the bootstrap was healthy: verifications (not those made while a scenario had a bootstrap down or slowed on purpose, e.g. inside a latency sweep), bidirectional-discovery checks, and the pairs of every matrix snapshot (mutual = success; an asymmetry or a blind pair = failure, except what the matrix step expects and admissions still pending). When the harness itself was overloaded in a scenario with failures, that scenario is named next to the rate.',
  autoRecoveryRate: 'Share of bootstrap failures handled by a supervisor that it recovered automatically (process and docker modes). Scenarios tagged expected-failure (a crash loop made on purpose, which the plan says must not be auto-restarted) are left out.'
}

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

/**
 * A scenario that makes, on purpose, a failure the system is designed not to overcome (a dead bootstrap, a crash
 * loop): its failures are the behaviour under test, not a reliability problem.
 */
const EXPECTED_FAILURE_TAG = 'expected-failure'
const isExpectedFailure = (s: ScenarioRecord): boolean => s.tags.includes(EXPECTED_FAILURE_TAG)

function eventsOfScenario<T extends NodeEventType> (s: ScenarioRecord, type: T): Array<NodeEventOf<T>> {
  return s.events.filter((e): e is NodeEventOf<T> => e.type === type)
}

function eventsOf<T extends NodeEventType> (scenarios: readonly ScenarioRecord[], type: T): Array<NodeEventOf<T>> {
  return scenarios.flatMap(s => eventsOfScenario(s, type))
}

const count = <T>(items: readonly T[], predicate: (item: T) => boolean): number => items.filter(predicate).length

interface Exclusions { invalid: number, interrupted: number, overloaded: readonly ScenarioRecord[] }

/** A note appended to every KPI's detail so a reader knows what was left out and why. */
function exclusionNote (ex: Pick<Exclusions, 'invalid' | 'interrupted'>, expectedFailure?: number): string {
  const notes = []
  if (ex.invalid > 0) notes.push(`${plural(ex.invalid, 'invalid scenario')} (results not trusted)`)
  if (ex.interrupted > 0) notes.push(`${plural(ex.interrupted, 'interrupted scenario')} (partial data)`)
  if (expectedFailure != null && expectedFailure > 0) {
    notes.push(`${plural(expectedFailure, 'scenario')} tagged ${EXPECTED_FAILURE_TAG}`)
  }
  return notes.length === 0 ? '' : `; excludes ${notes.join(' and ')}`
}

/** Said next to a rate when the harness itself was overloaded: its timeouts may not be the network's. */
function overloadNote (overloaded: readonly ScenarioRecord[]): string {
  if (overloaded.length === 0) return ''
  const names = overloaded.map(s => `${s.name} (${s.harness?.overloadReason ?? 'overloaded'})`)
  return `; the harness itself was overloaded during ${plural(overloaded.length, 'scenario')}: ${names.join(', ')} — timeouts and partial verifications there may be the harness's, not the network's`
}

function connectionSuccessRate (trusted: readonly ScenarioRecord[], ex: Exclusions): Kpi {
  // Scenarios tagged expected-failure point at a dead bootstrap on purpose; their failed attempts are the
  // behaviour under test (Test 2), not a reliability problem.
  // A connection attempt in the plan's sense is the user's "Connect" (its ~70 % baseline counts hangs and
  // timeouts of that), so it is one connect:done — retries and failover to another bootstrap included.
  const excluded = trusted.filter(isExpectedFailure)
  const counted = trusted.filter(s => !isExpectedFailure(s))
  const results = eventsOf(counted, 'connect:done')
  const ok = count(results, r => r.success)
  return rateKpi('connectionSuccessRate', ok, results.length,
    `${ok}/${results.length} connection attempts (connect:done, retries and failover included) succeeded` +
    `${exclusionNote(ex, excluded.length)}${overloadNote(ex.overloaded.filter(s => counted.includes(s) && eventsOfScenario(s, 'connect:done').some(r => !r.success)))}`)
}

/** A failure is detectable only after one check interval plus the plan's 5 s ping deadline (real time). */
const PING_DEADLINE_MS = 5_000
/** The plan's health-check interval, for a scenario whose record has no monitor:started event. */
const PLAN_CHECK_INTERVAL_MS = 30_000

function intervalOf (s: ScenarioRecord): (observer: string) => number {
  const intervals = checkIntervals(s)
  const fallback = toRealMs(PLAN_CHECK_INTERVAL_MS, s.timeScale)
  return observer => intervals.get(observer) ?? fallback
}

/** Does this event concern `bootstrap`? (An address naming no known node counts when there is only one bootstrap.) */
function about (s: ScenarioRecord, bootstraps: ReadonlySet<string>, address: string | undefined, bootstrap: string): boolean {
  const named = bootstrapOfAddress(s, address)
  return named === bootstrap || (named === null && bootstraps.size === 1)
}

/**
 * The events by which the system notices a dead bootstrap: a cut-off peer's health indicator turning red or its
 * failed attempt on that bootstrap, or the bootstrap's supervisor restarting it or alerting the operator (a crash
 * repaired before the peers' next check was still detected, by the supervisor).
 */
function isDetection (s: ScenarioRecord, bootstraps: ReadonlySet<string>, o: Outage, event: NodeEvent): boolean {
  if (event.node === o.bootstrap) return event.type === 'supervisor:restart' || event.type === 'supervisor:alert'
  if (o.observers !== null && !o.observers.has(event.node)) return false
  if (event.type === 'health:status') return event.to === 'red' && about(s, bootstraps, event.address, o.bootstrap)
  if (event.type === 'connect:result') return event.outcome !== 'success' && about(s, bootstraps, event.bootstrap, o.bootstrap)
  return false
}

interface Detection { scenario: string, outage: Outage, measuredMs: number, planMs: number, timeScale: number, detected: boolean, conclusive: boolean }

/** Failures whose detection is timed: stops, kills and outage faults of a bootstrap (not restarts, not sweeps). */
const TIMED_CAUSES: ReadonlySet<Outage['cause']> = new Set(['stop', 'kill', 'fault'])

function detectionsIn (s: ScenarioRecord): Detection[] {
  const bootstraps = bootstrapNames(s)
  const interval = intervalOf(s)
  return deliberateOutages(s).filter(o => o.cuts && TIMED_CAUSES.has(o.cause)).map(o => {
    const first = s.events.find(e => e.time >= o.from && isDetection(s, bootstraps, o, e))
    const detected = first != null
    // Undetected: the observed window (until the bootstrap was back or the scenario ended) is a lower bound.
    const end = first?.time ?? Math.min(o.to ?? s.endedAt, s.endedAt)
    const measuredMs = Math.max(0, end - o.from)
    const observers = o.observers === null ? [...new Set(s.events.map(e => e.node))] : [...o.observers]
    const detectableAfter = Math.max(0, ...observers.map(interval)) + PING_DEADLINE_MS
    const planMs = toPlanMs(measuredMs, s.timeScale)
    // An outage over before any check could see it, in a window shorter than the target, cannot be judged.
    const conclusive = detected || measuredMs >= detectableAfter || meetsTarget('timeToFailureDetectionMs', planMs) === false
    return { scenario: s.name, outage: o, measuredMs, planMs, timeScale: s.timeScale, detected, conclusive }
  })
}

const describeOutage = (o: Outage): string =>
  o.cause === 'fault' ? `outage fault on ${[...(o.observers ?? [])].map(n => `${n}↔${o.bootstrap}`).join(', ')}` : `${o.cause} ${o.bootstrap}`

function timeToFailureDetection (trusted: readonly ScenarioRecord[], note: string): Kpi {
  const all = trusted.flatMap(detectionsIn)
  const detections = all.filter(d => d.conclusive)
  const inconclusive = all.length - detections.length
  const short = inconclusive > 0
    ? `; ${plural(inconclusive, 'bootstrap failure')} ended (restarted, healed or scenario over) before one check interval + the 5 s ping deadline had passed, undetected: too short to time, not counted`
    : ''
  if (detections.length === 0) {
    return kpi('timeToFailureDetectionMs', null, 0,
      `no stop, kill or outage fault of a bootstrap in this run${short}${note}`)
  }
  const worst = detections.reduce((a, b) => b.planMs > a.planMs ? b : a)
  const undetected = detections.filter(d => !d.detected)
  const parts = [
    `worst of ${plural(detections.length, 'bootstrap failure')} (stop, kill, or outage fault on a link to a bootstrap, external ones included): ${formatSeconds(worst.planMs)} ` +
      `(${worst.scenario} step ${worst.outage.step.index} "${worst.outage.step.label}", ${describeOutage(worst.outage)}: ${formatSeconds(worst.measuredMs)} measured at timeScale ${worst.timeScale})`,
    'from the failure to the first red indicator or failed attempt of a cut-off peer, or the bootstrap supervisor\'s restart or alert; measured durations are divided by each scenario\'s timeScale to give plan time'
  ]
  if (undetected.length > 0) {
    parts.push(`${undetected.length} never detected in a window longer than one check interval (counted at the observed window, a lower bound): not met`)
  }
  return kpi('timeToFailureDetectionMs', worst.planMs, detections.length, parts.join('; ') + short + note, undetected.length > 0)
}

function bootstrapAvailability (trusted: readonly ScenarioRecord[], note: string): Kpi {
  // The plan's availability is the bootstrap's under normal operation: checks made while a scenario had stopped,
  // killed or cut off a bootstrap on purpose (or within one check interval after) measure the scenario, not it.
  let up = 0
  let counted = 0
  let deliberate = 0
  for (const s of trusted.filter(sc => !isExpectedFailure(sc))) {
    const outages = deliberateOutages(s)
    const interval = intervalOf(s)
    for (const c of eventsOfScenario(s, 'health:check')) {
      const span = { start: Math.min(c.health.lastCheckTimestamp, c.time), end: c.time }
      if (inDeliberateOutage(outages, bootstrapOfAddress(s, c.health.address), c.node, span, interval)) {
        deliberate++
        continue
      }
      counted++
      if (c.health.isReachable) up++
    }
  }
  const excluded = deliberate > 0
    ? `; ${plural(deliberate, 'check')} made while a scenario had stopped, killed, cut off or slowed a bootstrap on purpose (until it was back, plus one check interval) not counted`
    : ''
  return rateKpi('bootstrapAvailability', up, counted,
    `${up}/${counted} health checks under normal operation found the bootstrap reachable${excluded}${note}`)
}

const BIDIRECTIONAL_ASSERTION_PREFIX = 'bidirectional'

/**
 * Keys of the asymmetries ("A→B") and blind pairs ("A and B", sorted) a matrix step expected, from its assertion's
 * `expected`; empty when it expected none or had no expectation.
 */
function expectedAsymmetries (s: ScenarioRecord, stepIndex: number | undefined): Set<string> {
  const assertion = stepIndex == null ? undefined : s.assertions.find(a => a.step === stepIndex && a.id === `${stepIndex}-matrix`)
  if (assertion == null) return new Set()
  try {
    const list: unknown = JSON.parse(assertion.expected)
    return Array.isArray(list) ? new Set(list.map(x => String(x).split(/:| see neither/)[0]!.trim())) : new Set()
  } catch {
    return new Set()
  }
}

const VERIFICATION_PHASES: ReadonlySet<string> = new Set(['connected', 'populating', 'verifying'])

/**
 * Each verification of a scenario with its span, judged again with what the record knows of who was down
 * (nodes/discovery-verdict.ts): a dial that went unanswered because the scenario had stopped its peer is churn, not
 * a discovery failure.
 */
function judgedVerifications (s: ScenarioRecord): Array<{ e: NodeEventOf<'discovery:status'>, span: { start: number, end: number }, status: DiscoveryStatus, departedDials: string[] }> {
  const departed = departures(s)
  return eventsOfScenario(s, 'discovery:status').map(e => {
    const span = { start: verificationStart(s, e), end: e.time }
    return { e, span, ...judgeWithDepartures(e.status, departed(span)) }
  })
}

/** When the verification that ended with `status` began: the node's last discovery phase before it (or its end). */
function verificationStart (s: ScenarioRecord, status: NodeEvent): number {
  let start = status.time
  for (const e of s.events) {
    if (e.time > status.time) break
    if (e.node === status.node && e.type === 'discovery:phase' && VERIFICATION_PHASES.has(e.phase)) start = e.time
  }
  return start
}

/**
 * Pairs of peers in each matrix snapshot: mutual visibility is a discovery success; an asymmetry, or two peers of
 * one bootstrap blind to each other (the plan's "both connected but neither sees the other"), a failure — except
 * what the matrix step expects (the scenario reproduces it on purpose) and admissions still under way (connected,
 * admission pending: in progress, not failed). Other pairs that see nothing of each other are left out: a partition
 * may keep them apart by design, and the scenario's own checks judge that.
 */
function matrixPairs (s: ScenarioRecord): { mutual: number, asymmetric: number, expected: number } {
  const out = { mutual: 0, asymmetric: 0, expected: 0 }
  const snapshots = s.matrices ?? (s.matrix == null ? [] : [{ step: s.steps.find(st => st.kind === 'matrix' && s.matrix!.at >= st.startedAt && s.matrix!.at <= st.endedAt)?.index, matrix: s.matrix }])
  for (const { step, matrix: m } of snapshots) {
    const sees = new Map(m.cells.map(c => [`${c.from}→${c.to}`, c.sees]))
    const pending = new Set(m.asymmetries.filter(a => a.cause === 'admission-pending').map(a => `${a.sees}→${a.unseen}`))
    const wanted = expectedAsymmetries(s, step)
    for (const [i, a] of m.peers.entries()) {
      for (const b of m.peers.slice(i + 1)) {
        const ab = sees.get(`${a}→${b}`) === true
        const ba = sees.get(`${b}→${a}`) === true
        if (ab && ba) out.mutual++
        else if (ab || ba) {
          const key = ab ? `${a}→${b}` : `${b}→${a}`
          if (pending.has(key)) continue
          if (wanted.has(key)) out.expected++
          else out.asymmetric++
        }
      }
    }
    for (const blind of m.blind) {
      if (wanted.has([...blind.peers].sort().join(' and '))) out.expected++
      else out.asymmetric++
    }
  }
  return out
}

function discoverySuccessRate (trusted: readonly ScenarioRecord[], note: string): Kpi {
  // The plan's target is "100 % (when bootstrap is healthy)", measured "when both online": a scenario pointing at a
  // dead bootstrap on purpose, or a verification made while the scenario had taken a bootstrap away, says nothing
  // about discovery, and counting it would make the target unreachable by construction.
  const healthy = trusted.filter(s => !isExpectedFailure(s))
  let verified = 0
  let verifications = 0
  let duringOutage = 0
  let mutual = 0
  let bidirectional = 0
  let pairs = 0
  let asymmetric = 0
  let byDesign = 0
  let leftDials = 0
  for (const s of healthy) {
    const outages = deliberateOutages(s)
    const interval = intervalOf(s)
    for (const { e, span, status, departedDials } of judgedVerifications(s)) {
      if (inDeliberateOutage(outages, null, e.node, span, interval)) {
        duringOutage++
        continue
      }
      verifications++
      // A first peer alone on the network reports overall 'verified', and counts as a success.
      if (status.overall === 'verified') verified++
      if (departedDials.length > 0) leftDials++
    }
    const checks = s.assertions.filter(a => a.id.startsWith(BIDIRECTIONAL_ASSERTION_PREFIX))
    bidirectional += checks.length
    mutual += count(checks, a => a.passed)
    const m = matrixPairs(s)
    pairs += m.mutual + m.asymmetric
    asymmetric += m.asymmetric
    byDesign += m.expected
  }
  const notes = [
    duringOutage > 0 ? `${plural(duringOutage, 'verification')} made while a bootstrap was down or slowed on purpose not counted` : '',
    leftDials > 0 ? `${plural(leftDials, 'verification')} verified although dials to peers the scenario had stopped went unanswered` : '',
    byDesign > 0 ? `${byDesign} ${byDesign === 1 ? 'asymmetry' : 'asymmetries'} a scenario reproduces on purpose not counted` : ''
  ].filter(x => x !== '')
  return rateKpi('discoverySuccessRate', verified + mutual + (pairs - asymmetric), verifications + bidirectional + pairs,
    `${verified}/${verifications} discovery verifications ended 'verified', ${mutual}/${bidirectional} ` +
    `bidirectional-discovery checks passed and ${pairs - asymmetric}/${pairs} matrix pairs saw each other both ways (asymmetric and mutually blind pairs fail)` +
    `${notes.length > 0 ? `; ${notes.join('; ')}` : ''}${note}`)
}

function autoRecoveryRate (trusted: readonly ScenarioRecord[], note: string): Kpi {
  // A scenario tagged expected-failure makes, on purpose, a failure the supervisor is designed not to overcome
  // (Test 5b's crash loop: "> 3 restarts in 10 minutes → alert operator, don't auto-restart").
  const excluded = trusted.filter(isExpectedFailure).length
  const recoveries = trusted.filter(s => !isExpectedFailure(s)).flatMap(s => s.recoveries)
  note = exclusionNote({ invalid: 0, interrupted: 0 }, excluded) + note
  const automatic = count(recoveries, r => r.automatic && r.recoveredAt != null)
  return rateKpi('autoRecoveryRate', automatic, recoveries.length,
    recoveries.length === 0
      ? `no bootstrap failure handled by a supervisor in this run${note}`
      : `${automatic}/${recoveries.length} bootstrap failures recovered automatically${note}`)
}

/** A scenario with a failed discovery sample (verification, bidirectional check or unexpected matrix asymmetry). */
function hadDiscoveryFailure (s: ScenarioRecord): boolean {
  return judgedVerifications(s).some(v => v.status.overall !== 'verified') ||
    s.assertions.some(a => a.id.startsWith(BIDIRECTIONAL_ASSERTION_PREFIX) && !a.passed) ||
    matrixPairs(s).asymmetric > 0
}

/**
 * An interrupted scenario (Ctrl-C) stopped mid-way: what it measured is partial, e.g. a fault never detected. In a
 * run marked interrupted, any scenario that ended in error is taken as cut short.
 */
export const isInterrupted = (s: ScenarioRecord, runInterrupted = false): boolean =>
  s.status === 'error' && (s.reason === 'interrupted' || runInterrupted)

export function computeKpis (record: RunRecord): Kpis {
  // An invalid scenario's measurements cannot be trusted (e.g. traffic went around a fault), and an interrupted
  // one's are partial, so no KPI uses them.
  const valid = record.scenarios.filter(s => s.invalid == null)
  const trusted = valid.filter(s => !isInterrupted(s, record.run.interrupted))
  const ex: Exclusions = {
    invalid: record.scenarios.length - valid.length,
    interrupted: valid.length - trusted.length,
    overloaded: trusted.filter(s => s.harness?.overloaded === true)
  }
  const note = exclusionNote(ex)
  const discovery = discoverySuccessRate(trusted, exclusionNote(ex, trusted.filter(isExpectedFailure).length))
  return {
    connectionSuccessRate: connectionSuccessRate(trusted, ex),
    timeToFailureDetectionMs: timeToFailureDetection(trusted, note),
    bootstrapAvailability: bootstrapAvailability(trusted, note),
    discoverySuccessRate: discovery.met === false
      ? { ...discovery, detail: discovery.detail + overloadNote(ex.overloaded.filter(s => !isExpectedFailure(s) && hadDiscoveryFailure(s))) }
      : discovery,
    autoRecoveryRate: autoRecoveryRate(trusted, note)
  }
}
