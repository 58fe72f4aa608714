import { overloadVerdict } from '../sim/runner/harness-health.ts'
import { quantile, round } from './util.ts'

/**
 * How many verifications (testPeerDiscovery: a DHT put to the 20 closest peers, read back) the scale benches run at
 * once. A put dials and queries dozens of peers; on a saturated event loop every put in flight slows the others,
 * and one that reaches the node's DHT deadline (dhtQueryTimeoutMs) has spent its work for nothing and is retried.
 * Measured at N = 100 in one process with a fixed 4 at once on a loaded machine: 32 of 132 puts timed out.
 * So the limit is additive-increase / multiplicative-decrease: halved on a timed-out attempt, one more after an
 * attempt that took less than half the deadline, between 1 and `max`. The nodes and their deadline are untouched:
 * only when the harness asks changes.
 */
export class VerifyGate {
  readonly max: number
  #limit: number
  #inFlight = 0
  #lowest: number
  readonly #waiters: Array<() => void> = []

  constructor (max: number) {
    this.max = Math.max(1, Math.floor(max))
    this.#limit = this.max
    this.#lowest = this.max
  }

  get limit (): number { return this.#limit }
  /** The lowest the limit went: how much the run had to back off. */
  get lowest (): number { return this.#lowest }

  /** Runs `attempt` when a slot is free; `outcome` says how it went (an attempt that took `ms`, of a `deadlineMs`). */
  async run<T> (attempt: () => Promise<T>, outcome: (result: T) => { timedOut: boolean, ms: number, deadlineMs: number }): Promise<T> {
    while (this.#inFlight >= this.#limit) await new Promise<void>(resolve => this.#waiters.push(resolve))
    this.#inFlight++
    try {
      const result = await attempt()
      const o = outcome(result)
      if (o.timedOut) this.#limit = Math.max(1, Math.floor(this.#limit / 2))
      else if (o.ms < o.deadlineMs / 2) this.#limit = Math.min(this.max, this.#limit + 1)
      this.#lowest = Math.min(this.#lowest, this.#limit)
      return result
    } finally {
      this.#inFlight--
      // Wake as many as the (possibly changed) limit admits; each re-checks it before taking a slot.
      for (let free = this.#limit - this.#inFlight; free > 0 && this.#waiters.length > 0; free--) this.#waiters.shift()!()
    }
  }
}

/**
 * This process's event-loop lag over time (a 100 ms probe timer's lateness), so that a verification that failed
 * can be judged by the harness's state *during that attempt*, with the runner's own overload rule
 * (sim/runner/harness-health.ts): failed while overloaded says the harness may have decided it, not the network.
 * Only meaningful where the nodes share this event loop (the in-process bench).
 */
export class LagWatch {
  static readonly PROBE_MS = 100
  readonly #samples: Array<{ at: number, lagMs: number }> = []
  #timer: ReturnType<typeof setTimeout> | undefined
  #expected = 0

  start (): this {
    const tick = (): void => {
      const now = performance.now()
      this.#samples.push({ at: now, lagMs: Math.max(0, now - this.#expected) })
      this.#expected = now + LagWatch.PROBE_MS
      this.#timer = setTimeout(tick, LagWatch.PROBE_MS)
      this.#timer.unref?.()
    }
    this.#expected = performance.now() + LagWatch.PROBE_MS
    this.#timer = setTimeout(tick, LagWatch.PROBE_MS)
    this.#timer.unref?.()
    return this
  }

  stop (): void {
    clearTimeout(this.#timer)
  }

  /** The overload verdict for the interval [from, to] (performance.now() times). */
  during (from: number, to: number): { overloaded: boolean, overloadReason?: string } {
    const lags = this.#samples.filter(s => s.at >= from && s.at <= to + LagWatch.PROBE_MS).map(s => s.lagMs)
    if (lags.length === 0) return { overloaded: false }
    const mean = lags.reduce((a, b) => a + b, 0) / lags.length
    return overloadVerdict({
      eventLoopLagMs: { mean: round(mean, 1), p99: round(quantile(lags, 0.99) ?? 0, 1), max: round(Math.max(...lags), 1) },
      hostCpuBusyPercent: null
    })
  }
}
