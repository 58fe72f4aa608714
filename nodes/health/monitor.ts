import type { PlanTiming } from '../config.ts'
import type { NodeEventBody } from '../events.ts'
import type { BootstrapHealth, HealthStatus, MonitorState } from '../schemas.ts'
import { describeError } from '../util.ts'

export interface BootstrapMonitorOptions {
  /** Already scaled: the monitor waits exactly these durations. */
  timing: PlanTiming
  /** One health check (Solution #2.2). It should honour the signal; the monitor ends it at the deadline regardless. */
  check: (address: string, signal: AbortSignal) => Promise<BootstrapHealth>
  emit: (body: NodeEventBody) => void
  /** The clock for every duration the monitor measures (downtime, alert delay, uptime window). */
  now?: () => number
}

/** A check the caller or stop() abandoned: not a measurement of the bootstrap, so it is never recorded. */
class CheckAbandonedError extends Error {
  override readonly name = 'CheckAbandonedError'
}

/**
 * Plan Solution #2: periodic bootstrap health checks, a green/yellow/red status, the high-latency warning, the
 * unreachable alert and recovery, with the history and uptime the plan asks to keep.
 *
 * `record()` is the whole state machine and is synchronous; the scheduling around it only decides when checks run.
 */
export class BootstrapMonitor {
  readonly #timing: PlanTiming
  readonly #check: BootstrapMonitorOptions['check']
  readonly #emit: BootstrapMonitorOptions['emit']
  readonly #now: () => number

  #running = false
  #address: string | null = null
  #interval: ReturnType<typeof setInterval> | undefined
  /** Aborted (and replaced) by stop(): ends every check in flight at that moment, scheduled or on demand. */
  #session = new AbortController()
  /** The session whose scheduled check is still running; a restarted session must not wait for the old one. */
  #scheduledInFlight: AbortController | null = null
  /** Ping deadlines of in-flight checks: stop() clears them itself rather than waiting for the checks to settle. */
  readonly #deadlines = new Set<ReturnType<typeof setTimeout>>()

  #status: HealthStatus = 'unknown'
  #history: BootstrapHealth[] = []
  /** Outlives `#history`: an hour of 30 s checks is 120 entries, the history keeps 20. */
  #uptimeSamples: Array<{ at: number, reachable: boolean }> = []
  #consecutiveHighLatency = 0
  #unreachableSince: number | null = null
  #warningActive = false
  #alertActive = false

  constructor (opts: BootstrapMonitorOptions) {
    this.#timing = opts.timing
    this.#check = opts.check
    this.#emit = opts.emit
    this.#now = opts.now ?? Date.now
  }

  /** Starts a fresh monitoring session: the first check runs now, then one every `healthCheckIntervalMs`. */
  start (address: string): void {
    if (this.#running && this.#address === address) return
    if (this.#running) this.stop()
    this.#reset(address)
    this.#running = true
    this.#emit({ type: 'monitor:started', address, intervalMs: this.#timing.healthCheckIntervalMs })
    this.#interval = setInterval(() => { this.#scheduledCheck() }, this.#timing.healthCheckIntervalMs)
    this.#scheduledCheck()
  }

  /** Clears the schedule and abandons any in-flight check. Idempotent. */
  stop (): void {
    if (this.#interval !== undefined) clearInterval(this.#interval)
    this.#interval = undefined
    for (const timer of this.#deadlines) clearTimeout(timer)
    this.#deadlines.clear()
    this.#session.abort(new CheckAbandonedError('monitor stopped'))
    // On-demand checks still work after stop (the checkBootstrapHealth command), so they get a live session.
    this.#session = new AbortController()
    if (!this.#running) return
    this.#running = false
    this.#emit({ type: 'monitor:stopped' })
  }

  state (): MonitorState {
    return {
      running: this.#running,
      status: this.#status,
      address: this.#address,
      history: [...this.#history],
      uptimePercent: this.#uptimePercent(),
      consecutiveHighLatency: this.#consecutiveHighLatency,
      unreachableSince: this.#unreachableSince,
      warningActive: this.#warningActive,
      alertActive: this.#alertActive
    }
  }

  /**
   * One check outside the schedule, recorded like a scheduled one. Rejects (and records nothing) when `signal` or
   * stop() abandons it; a check that throws or misses `healthPingTimeoutMs` is recorded as unreachable.
   */
  async checkNow (signal?: AbortSignal): Promise<BootstrapHealth> {
    const address = this.#address
    if (address == null) throw new Error('BootstrapMonitor.checkNow: no bootstrap address yet; call start(address) first')
    const health = await this.#measure(address, signal)
    this.record(health)
    return health
  }

  /** The state transition for one check result (Solution #2.3, #2.6, #2.7). */
  record (health: BootstrapHealth): void {
    const at = this.#now()
    const timing = this.#timing
    this.#address ??= health.address
    const address = this.#address

    this.#history.push(health)
    if (this.#history.length > timing.healthHistorySize) this.#history.splice(0, this.#history.length - timing.healthHistorySize)
    this.#uptimeSamples.push({ at, reachable: health.isReachable })
    this.#pruneUptime(at)

    const from = this.#status
    const to = statusOf(health, timing)
    this.#status = to
    this.#emit({ type: 'health:check', health, status: to })
    if (from !== to) this.#emit({ type: 'health:status', from, to, address })

    if (!health.isReachable) {
      // An outage breaks a run of slow answers, but does not re-arm the warning: nothing has answered fast yet.
      this.#consecutiveHighLatency = 0
      this.#unreachableSince ??= at
      const unreachableForMs = at - this.#unreachableSince
      if (!this.#alertActive && unreachableForMs >= timing.unreachableAlertMs) {
        this.#alertActive = true
        this.#emit({
          type: 'health:alert',
          address,
          unreachableForMs,
          message: 'Bootstrap unreachable - limited connectivity. Try refreshing the connection or wait for recovery'
        })
      }
      return
    }

    if (from === 'red' && this.#unreachableSince != null) {
      this.#emit({ type: 'health:recovered', address, downtimeMs: at - this.#unreachableSince })
    }
    this.#unreachableSince = null
    this.#alertActive = false

    const latencyMs = health.latencyMs
    if (latencyMs != null && latencyMs > timing.degradedLatencyMs) {
      this.#consecutiveHighLatency++
      if (!this.#warningActive && this.#consecutiveHighLatency >= timing.highLatencyConsecutiveChecks) {
        this.#warningActive = true
        this.#emit({
          type: 'health:warning',
          address,
          consecutive: this.#consecutiveHighLatency,
          latencyMs,
          message: `Bootstrap latency above ${timing.degradedLatencyMs} ms on ${this.#consecutiveHighLatency} consecutive checks - network may be slow`
        })
      }
    } else {
      this.#consecutiveHighLatency = 0
      this.#warningActive = false
    }
  }

  #scheduledCheck (): void {
    const address = this.#address
    // A check that outlasts the interval (a long ping deadline under a small timeScale) is not run twice at once.
    const session = this.#session
    if (!this.#running || address == null || this.#scheduledInFlight === session) return
    this.#scheduledInFlight = session
    this.#measure(address)
      .then(health => { this.record(health) })
      .catch(() => { /* abandoned by stop(): nothing to record */ })
      .finally(() => { if (this.#scheduledInFlight === session) this.#scheduledInFlight = null })
  }

  /** Runs the check against the ping deadline; any failure but abandonment becomes an unreachable result. */
  async #measure (address: string, signal?: AbortSignal): Promise<BootstrapHealth> {
    const session = this.#session.signal
    const abandon = signal == null ? session : AbortSignal.any([session, signal])
    abandon.throwIfAborted()
    const deadline = new AbortController()
    const timeoutMs = this.#timing.healthPingTimeoutMs
    const timer = setTimeout(() => {
      this.#deadlines.delete(timer)
      deadline.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'))
    }, timeoutMs)
    this.#deadlines.add(timer)
    const both = AbortSignal.any([abandon, deadline.signal])
    const startedAt = this.#now()
    try {
      // Raced, not just signalled: a check that ignores its signal must still end at the deadline.
      const health = await raceSignal(this.#check(address, both), both)
      // A result that arrived in the same turn as stop() belongs to a session that no longer exists.
      abandon.throwIfAborted()
      return health
    } catch (err) {
      if (abandon.aborted) throw abandon.reason
      return {
        address,
        isReachable: false,
        latencyMs: null,
        lastCheckTimestamp: startedAt,
        errorMessage: deadline.signal.aborted ? `no answer within ${timeoutMs} ms` : describeError(err),
        peerCountViaBootstrap: 0
      }
    } finally {
      clearTimeout(timer)
      this.#deadlines.delete(timer)
    }
  }

  #reset (address: string): void {
    this.#address = address
    this.#status = 'unknown'
    this.#history = []
    this.#uptimeSamples = []
    this.#consecutiveHighLatency = 0
    this.#unreachableSince = null
    this.#warningActive = false
    this.#alertActive = false
  }

  #pruneUptime (at: number): void {
    const cutoff = at - this.#timing.uptimeWindowMs
    const firstKept = this.#uptimeSamples.findIndex(s => s.at > cutoff)
    this.#uptimeSamples.splice(0, firstKept === -1 ? this.#uptimeSamples.length : firstKept)
  }

  #uptimePercent (): number | null {
    this.#pruneUptime(this.#now())
    if (this.#uptimeSamples.length === 0) return null
    const up = this.#uptimeSamples.filter(s => s.reachable).length
    return (up / this.#uptimeSamples.length) * 100
  }
}

/** Solution #2.6. A reachable bootstrap slower than the degraded threshold is still yellow, not red: it answers. */
export function statusOf (health: BootstrapHealth, timing: Pick<PlanTiming, 'healthyLatencyMs'>): HealthStatus {
  if (!health.isReachable) return 'red'
  if (health.latencyMs == null || health.latencyMs < timing.healthyLatencyMs) return 'green'
  return 'yellow'
}

async function raceSignal<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
    // The losing check may still reject later; nobody awaits it any more.
    promise.catch(() => {})
  }
}
