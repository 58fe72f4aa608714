import { SupervisorConfigSchema, scaledSupervisorConfig, type SupervisorConfig, type SupervisorConfigInput } from './config.ts'
import { loadHistory, saveHistory } from './history.ts'
import type {
  CheckName, CheckOutcome, Incident, Recovery, SupervisorEvent, SupervisorEventListener, SupervisorHistory
} from './schemas.ts'

/**
 * Plan Solution #4, "Server-Side Bootstrap Auto-Recovery", as a class: every interval it checks that the bootstrap
 * (1) has a live process, (2) listens on its port and (3) answers a libp2p ping within 5 s; on a failure it
 * restarts it through an injected `restart()`, at most 3 times in 10 minutes, after which it raises an operator
 * alert and stops restarting until acknowledged. The restart history lives in a JSON file so a restarted
 * supervisor keeps counting.
 *
 * How to probe and restart is the caller's business (a child process, a container, a systemd unit): the
 * supervisor only knows the three checks and the rule.
 */

export interface ProbeResult {
  ok: boolean
  /** What was measured, or why it failed: goes into the check event verbatim. */
  detail: string
  /** When the failure began, if the probe knows (a process exit time); makes `failedAt` exact. */
  since?: number
  /** Check 3's round trip. */
  latencyMs?: number
}

export interface SupervisedTarget {
  readonly name: string
  /** Check 1: the process (or container) is alive. */
  checkProcess(signal: AbortSignal): Promise<ProbeResult>
  /** Check 2: something accepts TCP connections on the libp2p port. */
  checkPort(signal: AbortSignal): Promise<ProbeResult>
  /** Check 3: the node answers a libp2p ping; the signal carries the 5 s deadline. */
  checkDht(signal: AbortSignal): Promise<ProbeResult>
  /** Kills whatever is left of the node (it may be hung, not dead) and starts it again. */
  restart(signal: AbortSignal): Promise<void>
}

/** Time as the supervisor sees it; tests pass a fake one to walk through a 10-minute window in milliseconds. */
export interface Clock {
  now(): number
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    const { setTimeout: wait } = await import('node:timers/promises')
    await wait(ms, undefined, { signal })
  }
}

export interface OperatorAlert {
  node: string
  at: number
  restartsInWindow: number
  windowMs: number
  message: string
}

export interface SupervisorOptions {
  target: SupervisedTarget
  /** Plan values; `timeScale` is applied here. Default: the plan's 60 s / 5 s / 3 in 10 min. */
  config?: SupervisorConfigInput
  /** Where the restart history survives a supervisor restart. */
  historyFile: string
  clock?: Clock
  /** The operator notification (the plan's email/Slack). Errors are reported through `warn`, never thrown. */
  onAlert?: (alert: OperatorAlert) => void | Promise<void>
  /** Problems of the supervisor itself (unreadable history, a throwing probe); default: stderr. */
  warn?: (message: string) => void
}

export interface CycleResult {
  ok: boolean
  action: 'none' | 'restarted' | 'alerted' | 'suppressed'
  checks: CheckOutcome[]
}

const MAX_EVENTS = 10_000
const CHECKS: ReadonlyArray<{ name: CheckName, method: 'checkProcess' | 'checkPort' | 'checkDht' }> = [
  { name: 'process', method: 'checkProcess' },
  { name: 'port', method: 'checkPort' },
  { name: 'dht', method: 'checkDht' }
]

interface CheckResult { outcome: CheckOutcome, since?: number, latencyMs?: number }

/** How long a failed port or DHT check waits for the process's exit to be heard of: a few turns, 100 ms at most. */
const EXIT_SETTLE_TURNS = 5
const EXIT_SETTLE_TURN_MS = 20

export class Supervisor implements AsyncDisposable {
  readonly name: string
  /** Scaled: the durations the supervisor actually waits. */
  readonly config: SupervisorConfig
  readonly historyFile: string
  readonly #target: SupervisedTarget
  readonly #clock: Clock
  readonly #onAlert: SupervisorOptions['onAlert']
  readonly #warn: (message: string) => void
  readonly #listeners = new Set<SupervisorEventListener>()
  readonly #events: SupervisorEvent[] = []
  #history: SupervisorHistory
  #loop: Promise<void> | undefined
  #stop: AbortController | undefined
  /** One cycle at a time: the loop and a caller's `checkOnce()` must not both restart the node. */
  #busy: Promise<unknown> = Promise.resolve()

  constructor (options: SupervisorOptions) {
    this.#target = options.target
    this.name = options.target.name
    this.config = scaledSupervisorConfig(SupervisorConfigSchema.parse(options.config ?? {}))
    this.historyFile = options.historyFile
    this.#clock = options.clock ?? systemClock
    this.#onAlert = options.onAlert
    this.#warn = options.warn ?? (message => { process.stderr.write(`supervisor ${this.name}: ${message}\n`) })
    this.#history = loadHistory(this.historyFile, this.name, this.#warn)
  }

  get running (): boolean {
    return this.#loop != null
  }

  /** True after the alert, until `acknowledge()`: failures are reported but no longer restarted. */
  get alerted (): boolean {
    return this.#history.alert != null
  }

  /** Checks now, then every `checkIntervalMs` (measured start to start, as a timer would). */
  start (): void {
    if (this.#loop != null) return
    const stop = new AbortController()
    this.#stop = stop
    this.#loop = (async () => {
      while (!stop.signal.aborted) {
        const began = this.#clock.now()
        try {
          await this.#exclusive(async () => await this.#cycle(stop.signal))
        } catch (err) {
          if (!stop.signal.aborted) this.#warn(`check cycle failed: ${message(err)}`)
        }
        const wait = Math.max(0, began + this.config.checkIntervalMs - this.#clock.now())
        await this.#clock.sleep(wait, stop.signal).catch(() => {})
      }
    })()
  }

  /** Ends the loop; resolves once a cycle in flight (a restart included) has given up. */
  async stop (): Promise<void> {
    this.#stop?.abort(new Error(`supervisor ${this.name} stopped`))
    await this.#loop
    this.#loop = undefined
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.stop()
  }

  /** One check-and-act cycle, as one run of the plan's health script; for tools and tests that drive time themselves. */
  async checkOnce (signal?: AbortSignal): Promise<CycleResult> {
    return await this.#exclusive(async () => await this.#cycle(signal ?? new AbortController().signal))
  }

  /** The operator has looked: restarting resumes, with a fresh window. */
  acknowledge (): void {
    this.#history = { ...this.#history, alert: null, restarts: [] }
    saveHistory(this.historyFile, this.#history)
  }

  subscribe (listener: SupervisorEventListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  events (): SupervisorEvent[] {
    return [...this.#events]
  }

  /** Every finished incident, oldest first, including those recorded by an earlier supervisor on the same file. */
  recoveries (): Recovery[] {
    return [...this.#history.recoveries]
  }

  history (): SupervisorHistory {
    return structuredClone(this.#history)
  }

  restartsInWindow (): number {
    const since = this.#clock.now() - this.config.restartWindowMs
    return this.#history.restarts.filter(r => r.at > since).length
  }

  async #exclusive<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(fn, fn)
    this.#busy = run.catch(() => {})
    return await run
  }

  async #cycle (signal: AbortSignal): Promise<CycleResult> {
    const checks = await this.#check(signal)
    let failed = checks.find(c => !c.outcome.ok)
    if (failed == null) {
      this.#recovered()
      return { ok: true, action: 'none', checks: checks.map(c => c.outcome) }
    }
    signal.throwIfAborted()
    if (failed.outcome.name !== 'process' && this.#history.incident == null) failed = await this.#exitBehind(failed, signal)
    const outcomes = checks.map(c => c.outcome)
    const reason = `${failed.outcome.name} check failed: ${failed.outcome.detail}`
    const now = this.#clock.now()
    const incident: Incident = this.#history.incident ?? {
      failedAt: failed.since ?? now, failedAtExact: failed.since != null, detectedAt: now, restarts: 0, reason
    }
    this.#persist({ ...this.#history, incident })
    if (this.#history.alert != null) return { ok: false, action: 'suppressed', checks: outcomes }

    const inWindow = this.restartsInWindow()
    if (inWindow >= this.config.maxRestarts) {
      await this.#alert(inWindow)
      return { ok: false, action: 'alerted', checks: outcomes }
    }
    await this.#restart(reason, inWindow + 1, signal)
    await this.#awaitRecovery(signal)
    return { ok: false, action: 'restarted', checks: outcomes }
  }

  /** Runs the checks in the plan's order; a failure ends the list, as the script's checks depend on each other. */
  async #check (signal: AbortSignal): Promise<CheckResult[]> {
    const results: CheckResult[] = []
    for (const { name, method } of CHECKS) {
      const started = this.#clock.now()
      const probe = await this.#probe(method, signal)
      const outcome: CheckOutcome = { name, ok: probe.ok, detail: probe.detail, durationMs: this.#clock.now() - started }
      results.push({ outcome, ...(probe.since != null ? { since: probe.since } : {}), ...(probe.latencyMs != null ? { latencyMs: probe.latencyMs } : {}) })
      if (!probe.ok) break
    }
    const ok = results.every(r => r.outcome.ok)
    this.#emit({
      type: 'check', at: this.#clock.now(), node: this.name, ok, checks: results.map(r => r.outcome),
      latencyMs: results.find(r => r.outcome.name === 'dht')?.latencyMs ?? null
    })
    return results
  }

  /**
   * A killed process's port refuses before the harness has heard of its exit (on a loaded machine the exit event
   * comes after the refused connect): asked again a few event-loop turns later, the process check names the cause
   * and its exact time, instead of a port failure at detection time.
   */
  async #exitBehind (failed: CheckResult, signal: AbortSignal): Promise<CheckResult> {
    for (let turn = 0; turn < EXIT_SETTLE_TURNS && !signal.aborted; turn++) {
      await new Promise(resolve => setTimeout(resolve, EXIT_SETTLE_TURN_MS))
      const probe = await this.#probe('checkProcess', signal)
      if (!probe.ok) return { outcome: { name: 'process', ok: false, detail: probe.detail, durationMs: 0 }, ...(probe.since != null ? { since: probe.since } : {}) }
    }
    return failed
  }

  /** A probe gets the ping deadline and is cut off at it even if it ignores its signal: a check can never hang. */
  async #probe (method: 'checkProcess' | 'checkPort' | 'checkDht', outer: AbortSignal): Promise<ProbeResult> {
    const timeout = AbortSignal.timeout(this.config.pingTimeoutMs)
    const signal = AbortSignal.any([outer, timeout])
    let onAbort: (() => void) | undefined
    const cutOff = new Promise<ProbeResult>(resolve => {
      onAbort = () => { resolve({ ok: false, detail: timeout.aborted ? `no answer within ${this.config.pingTimeoutMs} ms` : 'aborted' }) }
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([
        this.#target[method](signal).catch((err: unknown): ProbeResult => ({
          ok: false, detail: timeout.aborted ? `no answer within ${this.config.pingTimeoutMs} ms` : message(err)
        })),
        cutOff
      ])
    } finally {
      if (onAbort != null) signal.removeEventListener('abort', onAbort)
    }
  }

  async #restart (reason: string, number: number, outer: AbortSignal): Promise<void> {
    const at = this.#clock.now()
    // On disk before the attempt: a supervisor that dies mid-restart must still count it.
    const incident = this.#history.incident
    this.#persist({
      ...this.#history,
      restarts: [...this.#history.restarts, { at, reason }],
      incident: incident == null ? null : { ...incident, restarts: incident.restarts + 1 }
    })
    const signal = AbortSignal.any([outer, AbortSignal.timeout(this.config.restartTimeoutMs)])
    let error: string | undefined
    try {
      await this.#target.restart(signal)
    } catch (err) {
      error = signal.aborted && !outer.aborted ? `restart did not finish within ${this.config.restartTimeoutMs} ms: ${message(err)}` : message(err)
    }
    this.#emit({
      type: 'restart', at, node: this.name, reason, restartsInWindow: number, ok: error == null,
      durationMs: this.#clock.now() - at, ...(error != null ? { error } : {})
    })
    outer.throwIfAborted()
  }

  /** Checks again every `recoveryPollMs` until the node passes or `restartTimeoutMs` runs out (the next cycle retries). */
  async #awaitRecovery (signal: AbortSignal): Promise<void> {
    const deadline = this.#clock.now() + this.config.restartTimeoutMs
    while (this.#clock.now() < deadline) {
      await this.#clock.sleep(this.config.recoveryPollMs, signal)
      const checks = await this.#check(signal)
      if (checks.every(c => c.outcome.ok)) {
        this.#recovered()
        return
      }
    }
  }

  async #alert (restartsInWindow: number): Promise<void> {
    const at = this.#clock.now()
    const windowMs = this.config.restartWindowMs
    const text = `${this.name}: ${restartsInWindow} restarts within ${Math.round(windowMs / 1000)} s did not keep it healthy; ` +
      'auto-restart is off until an operator acknowledges (restart loops must not hide a deeper problem)'
    this.#persist({ ...this.#history, alert: { at, message: text } })
    const alert: OperatorAlert = { node: this.name, at, restartsInWindow, windowMs, message: text }
    this.#emit({ type: 'alert', ...alert })
    try {
      await this.#onAlert?.(alert)
    } catch (err) {
      this.#warn(`operator alert could not be delivered: ${message(err)}`)
    }
  }

  #recovered (): void {
    const incident = this.#history.incident
    if (incident == null) return
    const recoveredAt = this.#clock.now()
    const recovery: Recovery = {
      failedAt: incident.failedAt,
      failedAtExact: incident.failedAtExact,
      detectedAt: incident.detectedAt,
      recoveredAt,
      // After an alert the supervisor stopped acting: whoever brought the node back, it was not us.
      automatic: incident.restarts > 0 && this.#history.alert == null,
      restarts: incident.restarts,
      reason: incident.reason
    }
    this.#persist({ ...this.#history, incident: null, recoveries: [...this.#history.recoveries, recovery] })
    this.#emit({ type: 'recovered', at: recoveredAt, node: this.name, recovery, downtimeMs: recoveredAt - incident.failedAt })
  }

  #persist (history: SupervisorHistory): void {
    this.#history = history
    saveHistory(this.historyFile, history)
  }

  #emit (event: SupervisorEvent): void {
    this.#events.push(event)
    if (this.#events.length > MAX_EVENTS) this.#events.splice(0, this.#events.length - MAX_EVENTS)
    for (const listener of this.#listeners) {
      try { listener(event) } catch { /* a faulty listener must not stop supervision */ }
    }
  }
}

function message (err: unknown): string {
  if (err instanceof Error) return err.name === 'Error' ? err.message : `${err.name}: ${err.message}`
  return String(err)
}
