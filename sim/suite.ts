import os from 'node:os'
import { randomUUID } from 'node:crypto'
import type { LoadedScenario } from '../scenarios/load.ts'
import { VERSIONS } from '../nodes/node.ts'
import type { Backend } from './backends/backend.ts'
import { createBackend } from './backends/index.ts'
import type { Mode, RunRecord, ScenarioRecord } from '../scenarios/record.ts'
import { runScenario } from './runner/run-scenario.ts'
import { startHarnessHealth } from './runner/harness-health.ts'

export const CHIRAL_SIM_VERSION = '0.1.0'

export interface SuiteOptions {
  mode: Mode
  seed: number
  timeScale?: number | undefined
  /** Scenarios run at once; each is isolated (own nodes, addresses, ports), so they can share the process. */
  jobs?: number | undefined
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
  const jobs = Math.max(1, opts.jobs ?? (opts.mode === 'docker' || opts.mode === 'swarm' ? 1 : 2))
  const results: ScenarioRecord[] = new Array(scenarios.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < scenarios.length) {
      const index = next++
      const { scenario, file } = scenarios[index]!
      if (opts.signal?.aborted === true) {
        // Not started at all: nothing to tear down, and nothing measured that a KPI could count.
        results[index] = notRun(scenario, file, opts)
        continue
      }
      opts.onScenarioStart?.(scenario.name)
      const record = await runScenario(scenario, {
        mode: opts.mode,
        seed: opts.seed,
        timeScale: opts.timeScale,
        signal: opts.signal,
        file,
        createBackend: opts.createBackend ?? createBackend,
        onStep: opts.onStep
      })
      results[index] = record
      opts.onScenarioEnd?.(record)
    }
  }
  await Promise.all(Array.from({ length: Math.min(jobs, scenarios.length) }, worker))
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
      harness: health.stop()
    },
    scenarios: results
  }
}

function notRun (scenario: LoadedScenario['scenario'], file: string | undefined, opts: SuiteOptions): ScenarioRecord {
  const at = Date.now()
  return {
    name: scenario.name,
    title: scenario.title,
    description: scenario.description,
    ...(scenario.planTest != null ? { planTest: scenario.planTest } : {}),
    tags: scenario.tags,
    ...(file != null ? { file } : {}),
    status: 'skipped',
    reason: 'not run: the run was interrupted',
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
