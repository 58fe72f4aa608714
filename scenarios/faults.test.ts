import { describe, expect, it } from 'vitest'
import { loadBuiltin } from './load.ts'
import { findToxiproxyBinary } from '../sim/faults/toxiproxy-server.ts'
import { createBackend } from '../sim/backends/index.ts'
import { DockerBackend } from '../sim/backends/docker.ts'
import { runScenario } from '../sim/runner/run-scenario.ts'

/**
 * The Toxiproxy fault scenarios in TCP mode against the real server. Without a server they skip with the reason,
 * except under CI=true, where a missing server is a failure (scripts/setup-toxiproxy.sh installs it).
 */
const scenarios = await loadBuiltin(['faults'])
const server = process.env.TOXIPROXY_URL ?? findToxiproxyBinary()
const missing = server == null ? 'no toxiproxy-server (run: bash scripts/setup-toxiproxy.sh, or set TOXIPROXY_URL)' : undefined

describe('fault scenarios (tcp mode, real Toxiproxy)', () => {
  it('has a Toxiproxy server to run against', () => {
    if (missing != null && process.env.CI !== 'true') return
    expect(missing).toBeUndefined()
  })
  for (const { scenario, file } of scenarios) {
    it.skipIf(missing != null)(`${scenario.name}${missing != null ? ` — skipped: ${missing}` : ''}`, async () => {
      const record = await runScenario(scenario, { mode: 'tcp', seed: 20261124, file, createBackend })
      const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
      expect({ status: record.status, reason: record.reason, invalid: record.invalid, failed }).toEqual({ status: 'passed', reason: undefined, invalid: undefined, failed: [] })
      if (scenario.name === 'fault-latency-sweep') expect(record.sweep?.length).toBe(4)
    }, 180_000)
  }
})

/**
 * The same proxies in the other modes that have TCP links: child processes (loopback, like tcp) and containers
 * (proxies on the run network's gateway). Two quick scenarios each: a one-way fault and a partition that heals.
 */
const OTHER_MODES_SCENARIOS = ['fault-one-way', 'fault-partition-heals']
const engine = await DockerBackend.available()
const modeGate = {
  process: missing,
  docker: missing ?? (engine.ok ? undefined : engine.reason)
}

describe('fault scenarios in process and docker mode', () => {
  it('has a Docker engine for the docker-mode runs', () => {
    if (modeGate.docker != null && process.env.CI !== 'true') return
    expect(modeGate.docker).toBeUndefined()
  })
  for (const mode of ['process', 'docker'] as const) {
    for (const { scenario, file } of scenarios.filter(s => OTHER_MODES_SCENARIOS.includes(s.scenario.name))) {
      const skip = modeGate[mode]
      it.skipIf(skip != null)(`${scenario.name} in ${mode} mode${skip != null ? ` — skipped: ${skip}` : ''}`, async () => {
        const record = await runScenario(scenario, { mode, seed: 20261124, file, createBackend })
        const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
        expect({ status: record.status, reason: record.reason, invalid: record.invalid, failed }).toEqual({ status: 'passed', reason: undefined, invalid: undefined, failed: [] })
        expect(record.faults.length).toBeGreaterThan(0)
      }, 180_000)
    }
  }
})
