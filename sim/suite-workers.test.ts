import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadScenarios } from '../scenarios/load.ts'
import type { RunRecord, ScenarioRecord } from '../scenarios/record.ts'
import { runSuite } from './suite.ts'

/**
 * Scenarios spread over worker threads must give the verdicts one thread gives: same scenarios in the same order,
 * same statuses and assertions, the same seeded identities. Speed is bench/'s business, not a test's.
 */

const ROOT = path.resolve(import.meta.dirname, '..')
const FILES = [
  'scenarios/plan/1-normal-connection.yaml',
  'scenarios/plan/2b-bootstrap-refused.yaml',
  'scenarios/plan/3-bidirectional-discovery.yaml',
  'scenarios/plan/5-auto-recovery.yaml', // skipped in memory mode: a skip must come back from a thread as a skip
  'scenarios/plan/6-no-peers-online.yaml',
  'scenarios/asymmetry/client-mode.yaml',
  'test/fixtures/failing.yaml'
].map(f => path.join(ROOT, f))

/** What a verdict is made of; timings and run ids differ between any two runs. */
function verdicts (record: RunRecord): unknown[] {
  return record.scenarios.map((s: ScenarioRecord) => ({
    name: s.name,
    status: s.status,
    reason: s.reason,
    assertions: s.assertions.map(a => `${a.id}:${a.passed}`),
    peerIds: s.nodes.map(n => `${n.name}=${n.peerId ?? ''}`)
  }))
}

describe('runSuite over worker threads', () => {
  it('gives the same verdicts, order and seeded identities as one thread, and measures each thread', async () => {
    const scenarios = await loadScenarios(FILES)
    const one = await runSuite(scenarios, { mode: 'memory', seed: 11, workers: 1 })
    const started: string[] = []
    const steps = new Set<string>()
    const two = await runSuite(scenarios, {
      mode: 'memory',
      seed: 11,
      workers: 2,
      onScenarioStart: name => started.push(name),
      onStep: name => steps.add(name)
    })
    expect(one.run.workers).toBeUndefined()
    expect(two.run.workers).toBe(2)
    expect(verdicts(two)).toEqual(verdicts(one))
    expect(two.scenarios.map(s => s.name)).toEqual(scenarios.map(s => s.scenario.name))
    // The failing fixture fails in a thread as it does here; the suite's verdict is not softened by threads.
    expect(two.scenarios.find(s => s.name === 'deliberately-failing')?.status).toBe('failed')
    expect(started.sort()).toEqual(scenarios.map(s => s.scenario.name).sort())
    expect(steps.has('plan-1-normal-connection')).toBe(true)
    // Each scenario that ran carries its own thread's health (its event loop, its CPU), as in one thread.
    for (const s of two.scenarios.filter(s => s.status !== 'skipped')) expect(s.harness, s.name).toBeDefined()
  }, 120_000)

  it('an abort before the start leaves every scenario "not run", threads or not', async () => {
    const scenarios = await loadScenarios(FILES.slice(0, 3))
    const controller = new AbortController()
    controller.abort(new Error('interrupted'))
    const record = await runSuite(scenarios, { mode: 'memory', seed: 1, workers: 2, signal: controller.signal })
    expect(record.run.interrupted).toBe(true)
    expect(record.scenarios.map(s => s.reason)).toEqual(scenarios.map(() => 'not run: the run was interrupted'))
  })
})
