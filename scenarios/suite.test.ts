import { describe, expect, it } from 'vitest'
import { loadBuiltin } from './load.ts'
import { createBackend } from '../sim/backends/index.ts'
import { runScenario } from '../sim/runner/run-scenario.ts'

/**
 * The built-in suite as vitest tests, one per scenario, for teams that already run vitest. A scenario the runner
 * cannot run in memory mode (supervision, faults, mode-specific reproductions) is reported by vitest as skipped,
 * with the runner's own reason.
 */
const scenarios = await loadBuiltin(['plan', 'asymmetry', 'release'])

describe('built-in suite (memory mode)', () => {
  for (const { scenario, file } of scenarios) {
    it(scenario.name, async (context) => {
      const record = await runScenario(scenario, { mode: 'memory', seed: 20261124, file, createBackend })
      if (record.status === 'skipped') context.skip(record.reason)
      const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
      expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
    }, 120_000)
  }
})
