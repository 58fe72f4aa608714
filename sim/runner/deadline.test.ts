import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadBuiltin, loadScenarioFile, parseScenario } from '../../scenarios/load.ts'
import { createBackend } from '../backends/index.ts'
import { scenarioDeadline } from './deadline.ts'
import { waitDeadlineMs } from './steps/conditions.ts'
import { runScenario } from './run-scenario.ts'

const here = path.dirname(new URL(import.meta.url).pathname)
const scenarioFile = (rel: string): string => path.join(here, '../../scenarios', rel)

describe('the scenario deadline follows from its plan times', () => {
  it('Test 4 at timeScale 1 gets room for its 2-minute alert (a fixed 120 s deadline could never fit it)', async () => {
    const test4 = await loadScenarioFile(scenarioFile('plan/4-health-monitoring.yaml'))
    const real = scenarioDeadline(test4, 1)
    // After the kill: red within 60 s, then the alert after 120 s unreachable, then back to green.
    expect(real.ms).toBeGreaterThan(60_000 + 160_000 + 60_000)
    expect(real.ms).toBe(real.allowanceMs + real.planMs)
    // At timeScale 0.1 the same waits take a tenth.
    const fast = scenarioDeadline(test4, 0.1)
    expect(fast.ms).toBe(fast.allowanceMs + Math.round(fast.planMs * 0.1))
    expect(fast.ms).toBeLessThan(real.ms)
  })

  it('every built-in scenario\'s deadline covers its plan-time waits at timeScale 1', async () => {
    for (const { scenario } of await loadBuiltin()) {
      const d = scenarioDeadline(scenario, 1)
      const waits = scenario.steps.reduce((sum, s) => sum + (s.action === 'wait' ? s.timeoutMs : s.action === 'pause' ? s.ms : 0), 0)
      expect(d.ms, scenario.name).toBeGreaterThanOrEqual(waits + scenario.timeoutMs)
    }
  })

  it('a scenario whose plan-time pause outlasts its real-ms allowance still passes at timeScale 1', async () => {
    const scenario = parseScenario(`
name: long-pause
title: long pause
timeScale: 1
timeoutMs: 1000
nodes: [{ role: bootstrap, name: boot }, { role: peer, name: A }]
steps:
  - { action: start, nodes: [boot, A] }
  - { action: pause, ms: 1500 }
  - { action: connect, nodes: [A], expect: { success: true } }
`, 'long-pause.yaml')
    const record = await runScenario(scenario, { mode: 'memory', seed: 1, createBackend })
    expect(record.reason).toBeUndefined()
    expect(record.status).toBe('passed')
    expect(record.deadline).toMatchObject({ allowanceMs: 1000 })
    expect(record.deadline!.ms).toBeGreaterThan(1000 + 1500)
  })
})

describe('a wait\'s real-time tolerance', () => {
  it('adds real ms to the compressed timeout, never past the plan time, and to the scenario\'s allowance', async () => {
    // Plan-5b's restarts: 90 s plan, 5 s real tolerance.
    expect(waitDeadlineMs({ timeoutMs: 90_000, toleranceMs: 5_000 }, 9_000)).toBe(14_000)
    expect(waitDeadlineMs({ timeoutMs: 90_000, toleranceMs: 5_000 }, 90_000)).toBe(90_000)
    expect(waitDeadlineMs({ timeoutMs: 6_000, toleranceMs: 5_000 }, 3_000)).toBe(6_000)
    expect(waitDeadlineMs({ timeoutMs: 90_000, toleranceMs: 0 }, 9_000)).toBe(9_000)
    const crashLoop = await loadScenarioFile(scenarioFile('plan/5b-crash-loop.yaml'))
    const withoutTolerance = { ...crashLoop, steps: crashLoop.steps.map(s => s.action === 'wait' ? { ...s, toleranceMs: 0 } : s) }
    expect(scenarioDeadline(crashLoop, 0.1).allowanceMs - scenarioDeadline(withoutTolerance, 0.1).allowanceMs).toBe(15_000)
  })
})
