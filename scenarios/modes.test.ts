import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { loadBuiltin, loadScenarioFile } from './load.ts'
import { createBackend } from '../sim/backends/index.ts'
import { runScenario } from '../sim/runner/run-scenario.ts'
import type { Mode } from './record.ts'
import path from 'node:path'

/**
 * The plan's six tests in every mode that runs nodes outside this process: each node a child process, or a
 * container on a network made for the run (the image is built locally, no registry). Docker tests skip with the
 * reason where no engine answers, except under CI=true, where a missing engine fails.
 */
const plan = await loadBuiltin(['plan'])

function dockerAnswers (): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 })
    return true
  } catch {
    return false
  }
}
const noDocker = dockerAnswers() ? undefined : 'no Docker engine answers (start one: dockerd --storage-driver=vfs)'

async function passes (mode: Mode, loaded: { scenario: Parameters<typeof runScenario>[0], file: string }): Promise<void> {
  const record = await runScenario(loaded.scenario, { mode, seed: 20261124, file: loaded.file, createBackend })
  const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
  expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
}

describe('the plan in process mode', () => {
  for (const loaded of plan) it(loaded.scenario.name, async () => { await passes('process', loaded) }, 180_000)
})

describe('loopback-only reproductions in tcp mode', () => {
  it('asym-address-mapper-tcp', async () => {
    const file = path.join(import.meta.dirname, 'asymmetry/address-mapper-tcp.yaml')
    await passes('tcp', { scenario: await loadScenarioFile(file), file })
  }, 120_000)
})

describe('the plan in docker mode', () => {
  it('has a Docker engine to run against', () => {
    if (noDocker != null && process.env.CI !== 'true') return
    expect(noDocker).toBeUndefined()
  })
  for (const loaded of plan) {
    it.skipIf(noDocker != null)(`${loaded.scenario.name}${noDocker != null ? ` — skipped: ${noDocker}` : ''}`, async () => { await passes('docker', loaded) }, 240_000)
  }
})
