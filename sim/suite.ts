import os from 'node:os'
import { randomUUID } from 'node:crypto'
import type { LoadedScenario } from '../scenarios/load.ts'
import { VERSIONS } from '../nodes/node.ts'
import type { Backend } from './backends/backend.ts'
import { createBackend } from './backends/index.ts'
import type { Mode, RunRecord, ScenarioRecord } from '../scenarios/record.ts'
import { runScenario } from './runner/run-scenario.ts'
import { startHarnessHealth } from './runner/harness-health.ts'
import { scenarioDeadline } from './runner/deadline.ts'
import { describeError } from '../nodes/util.ts'
import { defaultWorkers, ScenarioWorkers } from './suite-workers.ts'

export const CHIRAL_SIM_VERSION = '0.1.0'

export interface SuiteOptions {
  mode: Mode
  seed: number
  timeScale?: number | undefined
  /**
   * Scenarios run at once; each is isolated (own nodes, addresses, ports), so they can share a thread. Default 2 in
   * one thread (1 in docker and swarm modes), else one per worker thread and at least 2.
   */
  jobs?: number | undefined
  /**
   * Worker threads the scenarios are spread over (sim/suite-workers.ts); default: the machine's cores (1 in docker and
   * swarm modes). 1 runs everything in this thread, as before workers existed; so does a single scenario, or a
   * custom `createBackend` (a function cannot cross into a thread).
   */
  workers?: number | undefined
  signal?: AbortSignal | undefined
  argv?: string[] | undefined
  createBackend?: ((mode: Mode) => Promise<Backend>) | undefined
  onScenarioStart?: ((name: string) => void) | undefined
  onStep?: ((scenario: string, label: string) => void) | undefined
  onScenarioEnd?: ((record: ScenarioRecord) => void) | undefined
}

/** Runs scenarios with a small worker pool and returns the RunRecord, in the scenarios' declared order. */
export async function runSuite (scenarios: LoadedScenario[], opts: SuiteOptions): Promise<RunRecord> {
  const startedAt = Date.now()
  const health = startHarnessHealth()
  const workers = opts.createBackend != null ? 1 : Math.max(1, Math.min(opts.workers ?? defaultWorkers(opts.mode), scenarios.length))
  const jobs = Math.max(1, opts.jobs ?? (opts.mode === 'docker' || opts.mode === 'swarm' ? 1 : Math.max(2, workers)))
  const results: ScenarioRecord[] = new Array(scenarios.length)
  await using pool = workers > 1 ? new ScenarioWorkers(workers) : undefined
  const onAbort = (): void => { pool?.abort(describeError(opts.signal?.reason)) }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const runOne = async ({ scenario, file }: LoadedScenario): Promise<ScenarioRecord> => {
    if (pool == null) {
      return await runScenario(scenario, {
        mode: opts.mode,
        seed: opts.seed,
        timeScale: opts.timeScale,
        signal: opts.signal,
        file,
        createBackend: opts.createBackend ?? createBackend,
        onStep: opts.onStep
      })
    }
    try {
      return await pool.run({ scenario, file, mode: opts.mode, seed: opts.seed, timeScale: opts.timeScale }, opts.onStep)
    } catch (err) {
      return unfinished(scenario, file, opts, 'error', describeError(err))
    }
  }
  // Spread over threads, the longest scenario starts first: the suite takes as long as its longest scenario, not as
  // that one started last. Records keep the declared order either way.
  const order = scenarios.map((_, i) => i)
  if (pool != null) {
    const planned = scenarios.map(({ scenario }) => scenarioDeadline(scenario, opts.timeScale ?? scenario.timeScale).ms)
    order.sort((a, b) => planned[b]! - planned[a]! || a - b)
  }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < order.length) {
      const index = order[next++]!
      const { scenario, file } = scenarios[index]!
      if (opts.signal?.aborted === true) {
        // Not started at all: nothing to tear down, and nothing measured that a KPI could count.
        results[index] = unfinished(scenario, file, opts, 'skipped', 'not run: the run was interrupted')
        continue
      }
      opts.onScenarioStart?.(scenario.name)
      const record = await runOne(scenarios[index]!)
      results[index] = record
      opts.onScenarioEnd?.(record)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, scenarios.length) }, worker))
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
  }
  return {
    schemaVersion: 1,
    run: {
      id: randomUUID(),
      startedAt,
      endedAt: Date.now(),
      seed: opts.seed,
      mode: opts.mode,
      timeScale: opts.timeScale ?? (scenarios[0]?.scenario.timeScale ?? 1),
      versions: { ...VERSIONS, chiralSim: CHIRAL_SIM_VERSION },
      host: { platform: process.platform, arch: process.arch, cpus: os.cpus().length, memoryMiB: Math.round(os.totalmem() / 1048576) },
      argv: opts.argv ?? [],
      interrupted: opts.signal?.aborted === true,
      harness: health.stop(),
      ...(workers > 1 ? { workers } : {})
    },
    scenarios: results
  }
}

/** The record of a scenario that did not run to its end in a runner: not started (skipped) or its thread lost (error). */
function unfinished (scenario: LoadedScenario['scenario'], file: string | undefined, opts: SuiteOptions, status: 'skipped' | 'error', reason: string): ScenarioRecord {
  const at = Date.now()
  return {
    name: scenario.name,
    title: scenario.title,
    description: scenario.description,
    ...(scenario.planTest != null ? { planTest: scenario.planTest } : {}),
    tags: scenario.tags,
    ...(file != null ? { file } : {}),
    status,
    reason,
    mode: opts.mode,
    seed: opts.seed,
    timeScale: opts.timeScale ?? scenario.timeScale,
    startedAt: at,
    endedAt: at,
    durationMs: 0,
    nodes: [],
    steps: [],
    assertions: [],
    events: [],
    faults: [],
    recoveries: []
  }
}
