import { describe, expect, it } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import { HarnessHealthSchema } from '../../scenarios/record.ts'
import { overloadVerdict, startHarnessHealth } from './harness-health.ts'

describe('the harness measures its own health', () => {
  it('sees a blocked event loop as an overload and names the stall', async () => {
    const health = startHarnessHealth()
    await sleep(100)
    // A synchronous 2.5 s block: what 30 in-process peers doing crypto at once look like to every timer.
    const until = Date.now() + 2_500
    while (Date.now() < until) { /* busy */ }
    await sleep(100)
    const h = health.stop()
    expect(() => HarnessHealthSchema.parse(h)).not.toThrow()
    expect(h.eventLoopLagMs.max).toBeGreaterThanOrEqual(2_000)
    // (No bound on the CPU share: on a shared machine a busy loop gets what the scheduler gives it.)
    expect(h.processCpuPercent).toBeGreaterThan(0)
    expect(h.overloaded).toBe(true)
    expect(h.overloadReason).toMatch(/stall of \d+/)
  })

  it('the rule: lag decides, the machine\'s CPU is context', () => {
    const quiet = { eventLoopLagMs: { mean: 5, p99: 330, max: 490 }, hostCpuBusyPercent: 100 }
    expect(overloadVerdict(quiet)).toEqual({ overloaded: false })
    expect(overloadVerdict({ ...quiet, eventLoopLagMs: { mean: 120, p99: 400, max: 900 } })).toMatchObject({ overloaded: true, overloadReason: 'event-loop lag mean 120 ms (≥ 100 ms), CPUs 100 % busy' })
    expect(overloadVerdict({ ...quiet, eventLoopLagMs: { mean: 20, p99: 600, max: 900 } }).overloaded).toBe(true)
  })
})
