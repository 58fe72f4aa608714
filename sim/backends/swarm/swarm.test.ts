import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getContainerRuntimeClient } from 'testcontainers'
import { loadBuiltin } from '../../../scenarios/load.ts'
import { runScenario } from '../../runner/run-scenario.ts'
import type { Mode } from '../../../scenarios/record.ts'
import { RUN_LABEL } from '../docker-reaper.ts'
import { ensureNodeImage } from '../docker-image.ts'
import { SwarmBackend } from './swarm.ts'

/**
 * The plan in swarm mode against a real two-engine swarm made on this machine: this engine as the manager, a second
 * dockerd in its own network namespace as the worker (scripts/setup-swarm.sh). The test makes the swarm itself when
 * none is up and takes it down afterwards; one that was already up (CI's, made by .ci/run) is left as found.
 * Without root, a Docker engine or the tools, the suite is skipped with the reason; under CI=true that is a failure.
 */

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
const SCRIPT = `${REPO}scripts/setup-swarm.sh`
const requireSwarm = process.env.CI === 'true'

function setupSwarm (...args: string[]): string {
  return execFileSync(SCRIPT, args, { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

function whyNot (): string | undefined {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 })
  } catch {
    return 'no Docker engine answers (start one: dockerd --storage-driver=vfs)'
  }
  if (process.getuid?.() !== 0) {
    try { execFileSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 10_000 }) } catch { return 'making a second engine needs root (network namespaces, dockerd) and sudo -n does not work here' }
  }
  for (const tool of ['ip', 'nsenter', 'dockerd']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }) } catch { return `${tool} is not installed` }
  }
  return undefined
}

/** Containers of a run on one engine (undefined: this machine's engine, the manager). */
function runContainers (dockerHost: string | undefined, runId: string): number {
  const out = execFileSync('docker', [...(dockerHost != null ? ['-H', dockerHost] : []), 'ps', '-q', '--filter', `label=${RUN_LABEL}=${runId}`], { encoding: 'utf8', timeout: 30_000 })
  return out.split('\n').filter(Boolean).length
}

const reason = whyNot()
const plan = await loadBuiltin(['plan'])

describe.runIf(reason != null && requireSwarm)('swarm mode on CI', () => {
  it('can make a two-engine swarm under CI=true', () => { expect.fail(reason) })
})

describe.skipIf(reason != null)(`the plan in swarm mode on two engines${reason != null ? ` (skipped: ${reason})` : ''}`, () => {
  let wasUp = false
  /** The second engine's API, printed by `setup-swarm.sh up`: where the test looks for the run's containers itself. */
  let workerHost = ''

  beforeAll(async () => {
    try { setupSwarm('status'); wasUp = true } catch { wasUp = false }
    workerHost = setupSwarm('up').split('\n').at(-1)!
    // No registry: the worker gets the images the run needs by `docker save | docker load` (a no-op when it has them).
    setupSwarm('load', (await ensureNodeImage()).tag)
  }, 420_000)

  afterAll(() => {
    if (!wasUp) setupSwarm('down')
  }, 120_000)

  it('sees two ready engines', async () => {
    const swarm = await SwarmBackend.available()
    expect(swarm.ok && swarm.engines.length).toBe(2)
    if (swarm.ok) expect(new Set(swarm.engines.map(e => e.addr)).size).toBe(2)
  })

  for (const loaded of plan) {
    it(loaded.scenario.name, async () => {
      let backend: SwarmBackend | undefined
      /** The run's containers on each engine, counted by each engine itself just before teardown. */
      let onEngines: { manager: number, worker: number } | undefined
      const record = await runScenario(loaded.scenario, {
        mode: 'swarm',
        seed: 20261201,
        file: loaded.file,
        createBackend: async (mode: Mode) => {
          expect(mode).toBe('swarm')
          const created = await SwarmBackend.create()
          const dispose = created[Symbol.asyncDispose].bind(created)
          Object.defineProperty(created, Symbol.asyncDispose, {
            value: async () => {
              onEngines = { manager: runContainers(undefined, created.runId), worker: runContainers(workerHost, created.runId) }
              await dispose()
            }
          })
          backend = created
          return created
        }
      })
      const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
      expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
      // Nodes really ran on both engines: every scenario has at least two nodes, placed round-robin; the manager says
      // where the tasks ran, and each engine shows the run's containers itself.
      expect(backend).toBeDefined()
      const engines = new Set(backend!.placed.map(p => p.engine.id))
      expect(engines.size, `engines used: ${JSON.stringify(backend!.placed)}`).toBe(2)
      expect(onEngines?.manager).toBeGreaterThan(0)
      expect(onEngines?.worker).toBeGreaterThan(0)
      // Teardown left nothing of the run: no service, secret or network with its label.
      const docker = (await getContainerRuntimeClient()).container.dockerode
      const filters = { label: [`${RUN_LABEL}=${backend!.runId}`] }
      expect([
        ...await docker.listServices({ filters }),
        ...await docker.listSecrets({ filters }),
        ...await docker.listNetworks({ filters })
      ]).toEqual([])
    }, 420_000)
  }

  it('reaps what a killed run left (services, network) when the next run starts', async () => {
    // A harness that makes a run with one placed node, then dies by SIGKILL: no exit hook runs.
    const script = `
      const { SwarmBackend } = await import(${JSON.stringify(`${REPO}sim/backends/swarm/swarm.ts`)})
      const b = await SwarmBackend.create()
      await b.place({ name: 'boot', role: 'bootstrap' }, AbortSignal.timeout(120000))
      console.log('RUN ' + b.runId)
      setInterval(() => {}, 1 << 30)
    `
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const deadline = Date.now() + 180_000
    while (!/RUN (\S+)/.test(out) && Date.now() < deadline && child.exitCode == null) await new Promise(resolve => setTimeout(resolve, 200))
    const runId = /RUN (\S+)/.exec(out)?.[1]
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(runId).toBeDefined()
    const docker = (await getContainerRuntimeClient()).container.dockerode
    const filters = { label: [`${RUN_LABEL}=${runId}`] }
    expect((await docker.listServices({ filters })).length).toBe(1)
    const next = await SwarmBackend.create()
    try {
      expect([...await docker.listServices({ filters }), ...await docker.listNetworks({ filters })]).toEqual([])
    } finally {
      await next[Symbol.asyncDispose]()
    }
  }, 300_000)
})
