import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { getContainerRuntimeClient } from 'testcontainers'
import { afterAll, describe, expect, it } from 'vitest'
import { DockerBackend } from './docker.ts'
import { reapAbandonedRuns, RUN_LABEL } from './docker-reaper.ts'
import { ensureNodeImage } from './docker-image.ts'
import { OWNER_LABELS, ownerLabels } from './owner.ts'

/**
 * Issue 12: a SIGKILLed harness left its containers (a bootstrap still answering) and its network, and the next run
 * removed only its own. A harness is SIGKILLed here for real; the next docker run, or `chiral-sim clean`, must leave
 * nothing of it — and must not touch a live run's.
 */

const engine = await DockerBackend.available()
const execFileAsync = promisify(execFile)
const ROOT = path.resolve(import.meta.dirname, '../..')
const dir = mkdtempSync(path.join(tmpdir(), 'chiral-reaper-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

/** A harness that starts a docker run (a node, or only its place on the network), reports it, and waits to be killed. */
async function killedHarness (name: string, withNode: boolean): Promise<{ runId: string, network: string }> {
  const script = path.join(dir, `${name}.ts`)
  writeFileSync(script, [
    `import { DockerBackend } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'sim/backends/docker.ts')).href)}`,
    'const backend = await DockerBackend.create()',
    'const signal = AbortSignal.timeout(120_000)',
    `const config = { name: ${JSON.stringify(name)}, role: 'bootstrap', transport: 'tcp', identitySeed: ${JSON.stringify(name)} }`,
    withNode ? 'await backend.startNode(config, signal)' : 'await backend.place(config, signal)',
    'console.log(JSON.stringify({ runId: backend.runId, network: backend.network.getName() }))',
    'setTimeout(() => {}, 120_000)'
  ].join('\n'))
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise(resolve => child.once('exit', resolve))
  const deadline = Date.now() + 150_000
  while (!out.includes('"runId"')) {
    if (child.exitCode != null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`harness ${name} did not start its run: ${out}\n${err}`)
    }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  // No 'exit' hook runs, no promise settles: what the run started stays, as after an OOM kill.
  child.kill('SIGKILL')
  await exited
  return JSON.parse(out.trim().split('\n').at(-1)!) as { runId: string, network: string }
}

async function leftOf (run: { runId: string, network: string }): Promise<{ containers: string[], networks: string[] }> {
  const docker = (await getContainerRuntimeClient()).container.dockerode
  const containers = await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${run.runId}`] } })
  const networks = await docker.listNetworks({ filters: { name: [run.network] } })
  return { containers: containers.map(c => c.Names[0] ?? c.Id), networks: networks.map(n => n.Name) }
}

describe.skipIf(!engine.ok)(`docker reaper${engine.ok ? '' : ` (skipped: ${engine.reason})`}`, () => {
  it('the next docker run removes a SIGKILLed harness\'s containers and network, and leaves a live run\'s alone', async () => {
    const dead = await killedHarness('reaped-by-next-run', true)
    const before = await leftOf(dead)
    expect(before.containers.length).toBe(2)
    expect(before.networks).toEqual([dead.network])

    await using live = await DockerBackend.create()
    expect(await leftOf(dead)).toEqual({ containers: [], networks: [] })
    // The live run's own network carries its owner, and a second run's reaper does not take it.
    const docker = (await getContainerRuntimeClient()).container.dockerode
    const labels = (await docker.getNetwork(live.network.getId()).inspect() as { Labels: Record<string, string> }).Labels
    expect(labels[OWNER_LABELS.pid]).toBe(String(process.pid))
    await using second = await DockerBackend.create()
    expect(second.runId).not.toBe(live.runId)
    expect((await leftOf({ runId: live.runId, network: live.network.getName() })).networks).toEqual([live.network.getName()])
  }, 240_000)

  it('removes a dead run\'s swarm task container that no longer runs (its engine may have left the swarm)', async () => {
    const client = await getContainerRuntimeClient()
    const docker = client.container.dockerode
    const runId = `reaper-task-${process.pid}-${Date.now()}`
    // A dead owner: this machine's labels with a pid no process has.
    const labels = { ...ownerLabels(), [OWNER_LABELS.pid]: '999999999', [RUN_LABEL]: runId, 'com.docker.swarm.task.id': 'gone' }
    const created = await docker.createContainer({ Image: (await ensureNodeImage()).tag, Labels: labels, Cmd: ['true'] })
    const name = (await created.inspect()).Name.replace(/^\//, '')
    try {
      expect((await reapAbandonedRuns(client)).containers).toContain(name)
      expect((await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${runId}`] } })).length).toBe(0)
    } finally {
      await created.remove({ force: true }).catch(() => {})
    }
  }, 240_000)

  it('chiral-sim clean removes a SIGKILLed harness\'s leftovers', async () => {
    const dead = await killedHarness('reaped-by-clean', false)
    expect((await leftOf(dead)).containers.length).toBe(1)
    const { stdout } = await execFileAsync(process.execPath, [path.join(ROOT, 'cli/main.ts'), 'clean'], { cwd: ROOT, timeout: 60_000 })
    expect(stdout).toContain(`chiral-sim-${dead.runId}-reaped-by-clean-net`)
    expect(stdout).toContain(dead.network)
    expect(await leftOf(dead)).toEqual({ containers: [], networks: [] })
  }, 240_000)
})
