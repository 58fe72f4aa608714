import { describe, expect, it } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
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

  it('in a worker thread (a scenario of runSuite --workers) it measures that thread alone: a blocked main thread is not its lag nor its CPU', async () => {
    const url = new URL('./harness-health.ts', import.meta.url).href
    // The worker measures 1.5 s of its own idle loop while this thread blocks for 1.2 s of it.
    const worker = new Worker(`import(${JSON.stringify(url)}).then(async ({ startHarnessHealth }) => {
      const { parentPort } = await import('node:worker_threads')
      const health = startHarnessHealth()
      parentPort.postMessage('measuring')
      await new Promise(resolve => setTimeout(resolve, 1500))
      parentPort.postMessage(health.stop())
    })`, { eval: true })
    const messages: unknown[] = []
    const done = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: unknown) => { messages.push(m); if (messages.length === 2) resolve() })
      worker.on('error', reject)
    })
    await new Promise<void>(resolve => worker.once('message', () => { resolve() }))
    const until = Date.now() + 1_200
    while (Date.now() < until) { /* busy: the main thread's loop is blocked, its CPU used */ }
    await done
    await worker.terminate()
    const h = HarnessHealthSchema.parse(messages[1])
    expect(h.eventLoopLagMs.max).toBeLessThan(1_000)
    // The main thread burnt ~1.2 s of CPU in the worker's 1.5 s: counted, that would be ~80 % of a core.
    expect(h.processCpuPercent).toBeLessThan(50)
    expect(h.overloaded).toBe(false)
  })
})
