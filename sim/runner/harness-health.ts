import os from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { HarnessHealth } from '../record.ts'

/**
 * The harness's own health while a scenario runs: how late this process's event loop ran (every in-process node
 * shares it) and how busy the CPUs were. A verification that timed out while the harness was starved says nothing
 * about the network, so the report puts this next to the verdict.
 *
 * Overloaded means the harness, not the system under test, may have decided the outcome:
 * - event-loop lag p99 ≥ 200 ms: a timer of the plan's shortest scaled intervals (a 1 s countdown, a 3 s check at
 *   timeScale 0.1) fired late by a fifth of a second or more at least 1 % of the time;
 * - or event-loop lag max ≥ 2 000 ms: one stall long enough to eat a compressed timeout;
 * - or every CPU ≥ 90 % busy on average (other processes included: nodes in process/docker mode, or other work on
 *   the machine), so nodes and harness queued for a core.
 */
export const OVERLOAD = { lagP99Ms: 200, lagMaxMs: 2_000, hostCpuBusyPercent: 90 } as const

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

/** Starts measuring now; `stop()` returns the figures for the time in between (and may be called once). */
export function startHarnessHealth (): { stop: () => HarnessHealth } {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()
  const startedAt = performance.now()
  const cpu = process.cpuUsage()
  const host = hostCpuTimes()
  return {
    stop: () => {
      histogram.disable()
      const wallMs = Math.max(1, performance.now() - startedAt)
      const used = process.cpuUsage(cpu)
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
  const reasons: string[] = []
  if (h.eventLoopLagMs.p99 >= OVERLOAD.lagP99Ms) reasons.push(`event-loop lag p99 ${h.eventLoopLagMs.p99} ms (≥ ${OVERLOAD.lagP99Ms} ms)`)
  if (h.eventLoopLagMs.max >= OVERLOAD.lagMaxMs) reasons.push(`an event-loop stall of ${h.eventLoopLagMs.max} ms (≥ ${OVERLOAD.lagMaxMs} ms)`)
  if (h.hostCpuBusyPercent != null && h.hostCpuBusyPercent >= OVERLOAD.hostCpuBusyPercent) reasons.push(`CPUs ${h.hostCpuBusyPercent} % busy (≥ ${OVERLOAD.hostCpuBusyPercent} %)`)
  return reasons.length === 0 ? { overloaded: false } : { overloaded: true, overloadReason: reasons.join(', ') }
}
