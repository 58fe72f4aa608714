import os from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { isMainThread } from 'node:worker_threads'
import type { HarnessHealth } from '../../scenarios/record.ts'

/**
 * The harness's own health while a scenario runs: how late this process's event loop ran (every in-process node
 * shares it) and how busy the CPUs were. A verification that timed out while the harness was starved says nothing
 * about the network, so the report puts this next to the verdict.
 *
 * Overloaded means the harness, not the system under test, may have decided the outcome:
 * - event-loop lag p99 ≥ 500 ms: at least 1 % of the time a timer fired half a second late, half of a compressed
 *   1 s connection timeout (timeScale 0.1);
 * - or mean lag ≥ 100 ms: the loop was behind all along, not just while nodes started (starting a node costs a few
 *   hundred ms of CPU at once, which every quiet run shows);
 * - or one stall ≥ 2 000 ms, long enough to eat a compressed timeout.
 * The machine's CPU is reported but is no trigger: a shared runner at 100 % can still serve the harness in time,
 * and the lag is what shows whether it did. (Nodes in process/docker mode run outside this event loop.)
 */
export const OVERLOAD = { lagP99Ms: 500, lagMeanMs: 100, lagMaxMs: 2_000 } as const

const RESOLUTION_MS = 20
const NS_PER_MS = 1e6

interface CpuTimes { busy: number, total: number }

function hostCpuTimes (): CpuTimes {
  let busy = 0
  let total = 0
  for (const cpu of os.cpus()) {
    const t = cpu.times
    const all = t.user + t.nice + t.sys + t.idle + t.irq
    total += all
    busy += all - t.idle
  }
  return { busy, total }
}

const round1 = (x: number): number => Math.round(x * 10) / 10

/**
 * In a worker thread of the suite (sim/suite-workers.ts) the loop measured is the thread's own and so is the CPU:
 * the process's would add the other threads' scenarios to this one's.
 */
const cpuUsage = (since?: NodeJS.CpuUsage): NodeJS.CpuUsage => isMainThread ? process.cpuUsage(since) : process.threadCpuUsage(since)

/** Starts measuring now; `stop()` returns the figures for the time in between (and may be called once). */
export function startHarnessHealth (): { stop: () => HarnessHealth } {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  const startedAt = performance.now()
  const cpu = cpuUsage()
  const host = hostCpuTimes()
  return {
    stop: () => {
      histogram.disable()
      const wallMs = Math.max(1, performance.now() - startedAt)
      const used = cpuUsage(cpu)
      const hostNow = hostCpuTimes()
      const hostTotal = hostNow.total - host.total
      // The histogram counts the sampling timer's own resolution as delay: subtract it, as Node's docs suggest.
      const lag = (ns: number): number => Number.isFinite(ns) && histogram.count > 0 ? round1(Math.max(0, ns / NS_PER_MS - RESOLUTION_MS)) : 0
      const figures = {
        eventLoopLagMs: { mean: lag(histogram.mean), p99: lag(histogram.percentile(99)), max: lag(histogram.max) },
        processCpuPercent: round1((used.user + used.system) / 1000 / wallMs * 100),
        hostCpuBusyPercent: hostTotal > 0 ? round1((hostNow.busy - host.busy) / hostTotal * 100) : null,
        cpus: os.cpus().length,
        loadAverage: round1(os.loadavg()[0] ?? 0)
      }
      return { ...figures, ...overloadVerdict(figures) }
    }
  }
}

/** The overload rule (OVERLOAD), applied to measured figures. */
export function overloadVerdict (h: Pick<HarnessHealth, 'eventLoopLagMs' | 'hostCpuBusyPercent'>): { overloaded: boolean, overloadReason?: string } {
  const lag = h.eventLoopLagMs
  const reasons: string[] = []
  if (lag.p99 >= OVERLOAD.lagP99Ms) reasons.push(`event-loop lag p99 ${lag.p99} ms (≥ ${OVERLOAD.lagP99Ms} ms)`)
  if (lag.mean >= OVERLOAD.lagMeanMs) reasons.push(`event-loop lag mean ${lag.mean} ms (≥ ${OVERLOAD.lagMeanMs} ms)`)
  if (lag.max >= OVERLOAD.lagMaxMs) reasons.push(`an event-loop stall of ${lag.max} ms (≥ ${OVERLOAD.lagMaxMs} ms)`)
  if (reasons.length === 0) return { overloaded: false }
  if (h.hostCpuBusyPercent != null) reasons.push(`CPUs ${h.hostCpuBusyPercent} % busy`)
  return { overloaded: true, overloadReason: reasons.join(', ') }
}
