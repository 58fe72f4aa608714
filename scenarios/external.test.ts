import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadBuiltin, BUILTIN_DIR } from './load.ts'
import { ScenarioSchema } from './schema.ts'
import { createBackend } from '../sim/backends/index.ts'
import { getContainerRuntimeClient } from 'testcontainers'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { privateKeyFromSeed } from '../nodes/libp2p.ts'
import { DockerBackend } from '../sim/backends/docker.ts'
import { RUN_LABEL } from '../sim/backends/docker-reaper.ts'
import { ensureNodeImage } from '../sim/backends/docker-image.ts'
import { runScenario } from '../sim/runner/run-scenario.ts'
import { freePort } from '../sim/host/free-port.ts'
import { isProcessAlive, pidsWithArgs, waitUntil } from '../sim/faults/test-support.ts'
import type { Mode, ScenarioRecord } from './record.ts'

/**
 * External bootstraps: a plain js-libp2p node (scenarios/external/js-libp2p-bootstrap.mjs, not chiral-sim's node
 * class) started from its command and checked only through libp2p. Needs nothing beyond Node: never skipped.
 */
const DIR = path.join(BUILTIN_DIR, 'external')
const SCRIPT = 'js-libp2p-bootstrap.mjs'
/** The peer ID the script derives from this seed (its --seed option). */
const DEMO_SEED = 'chiral-external-demo'
const DEMO_PEER_ID = '12D3KooWCNVcVhbwZJh8gKJKqb8y8PxWHTHMGWcSopezMJsLhfQC'
const scenarios = await loadBuiltin(['external'])

/** Live processes whose command line contains `text` (an inline script's marker). */
function pidsWithArgText (text: string): number[] {
  return readdirSync('/proc').filter(e => /^\d+$/.test(e)).filter(e => {
    try { return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text) && isProcessAlive(Number(e)) } catch { return false }
  }).map(Number).filter(pid => pid !== process.pid)
}

/**
 * The demo processes this checkout's runs started (they run in DIR): another checkout's test run on the same machine
 * uses the same script and seed.
 */
function demoPids (): number[] {
  return pidsWithArgs([SCRIPT, DEMO_SEED]).filter(pid => {
    try { return readlinkSync(`/proc/${pid}/cwd`) === DIR } catch { return false }
  })
}

const cleanups: Array<() => void> = []
afterEach(() => { for (const c of cleanups.splice(0)) c() })

/** A scenario must check something; these tests end before it (their start fails, is skipped or kills). */
const UNREACHED = { action: 'assert', label: 'not reached: the run ends before', check: { noEvent: { node: 'ext', type: 'log' } } }

function scenarioOf (input: { name: string, nodes: unknown[], steps: unknown[] }): ReturnType<typeof ScenarioSchema.parse> {
  return ScenarioSchema.parse({ title: input.name, description: 'external-node test', ...input })
}

async function run (scenario: ReturnType<typeof ScenarioSchema.parse>, mode: Mode = 'tcp'): Promise<Awaited<ReturnType<typeof runScenario>>> {
  // The file decides the command's working folder: the scenarios' own.
  return await runScenario(scenario, { mode, seed: 7, file: path.join(DIR, `${scenario.name}.yaml`), createBackend })
}

const demoNode = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  role: 'external',
  name: 'ext',
  command: ['{node}', SCRIPT, '--port', '{port}', '--seed', DEMO_SEED],
  readyLine: 'listening on',
  multiaddr: `/ip4/127.0.0.1/tcp/{port}/p2p/${DEMO_PEER_ID}`,
  ...over
})

const engine = await DockerBackend.available()
const dockerMissing = engine.ok ? undefined : engine.reason

describe('external bootstrap scenarios', () => {
  it('has a Docker engine for the docker-mode run', () => {
    if (dockerMissing != null && process.env.CI !== 'true') return
    expect(dockerMissing).toBeUndefined()
  })
  for (const mode of ['tcp', 'process', 'docker'] as const) {
    const skip = mode === 'docker' ? dockerMissing : undefined
    for (const { scenario, file } of scenarios) {
      it.skipIf(skip != null)(`${scenario.name} passes in ${mode} mode and leaves no external process behind${skip != null ? ` — skipped: ${skip}` : ''}`, async () => {
        const record = await runScenario(scenario, { mode, seed: 20261124, file, createBackend })
        const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
        expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
        // What the runner learned about the black box, from libp2p alone.
        const probes = record.events.filter(e => e.type === 'external:probe')
        expect(probes.length).toBeGreaterThanOrEqual(2)
        for (const p of probes) expect(p).toMatchObject({ ok: true, speaksDht: true, dhtProtocol: '/ipfs/kad/1.0.0', agentVersion: expect.stringMatching(/js-libp2p/) })
        expect(demoPids()).toEqual([])
      }, 120_000)
    }
  }

  it.skipIf(dockerMissing != null)(`an external bootstrap given as an image runs as a container of the run, keeps its address across a kill -9, and is removed${dockerMissing != null ? ` — skipped: ${dockerMissing}` : ''}`, async () => {
    // Any local image will do; chiral-sim's own node image is the one this machine is sure to have. It is still a
    // black box here: configured through its arguments, reached only through libp2p.
    const image = (await ensureNodeImage()).tag
    const seed = 'external-image-test'
    const peerId = peerIdFromPrivateKey(await privateKeyFromSeed(seed)).toString()
    const config = { name: 'ext', role: 'bootstrap', transport: 'tcp', identitySeed: seed, listen: ['/ip4/0.0.0.0/tcp/{port}'], dht: { protocol: '/ipfs/kad/1.0.0' } }
    const record = await run(scenarioOf({
      name: 'ext-image',
      nodes: [
        { role: 'external', name: 'ext', image, command: ['--config', JSON.stringify(config), '--no-control'], readyLine: 'CHIRAL_READY', multiaddr: `/ip4/{host}/tcp/{port}/p2p/${peerId}` },
        { role: 'peer', name: 'A' },
        { role: 'peer', name: 'B' }
      ],
      steps: [
        { action: 'start', nodes: ['ext', 'A', 'B'] },
        { action: 'connect', nodes: ['A', 'B'], expect: { success: true, bootstrap: 'ext' } },
        { action: 'waitBidirectional', nodes: ['A', 'B'], withinMs: 15_000 },
        { action: 'kill', nodes: ['ext'] },
        { action: 'health', nodes: ['A'], expect: { isReachable: false } },
        { action: 'start', nodes: ['ext'] },
        { action: 'health', nodes: ['A'], expect: { isReachable: true } }
      ]
    }), 'docker')
    const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
    expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
    const address = record.nodes.find(n => n.name === 'ext')!.multiaddrs[0]!
    expect(address).toMatch(new RegExp(`^/ip4/\\d+\\.\\d+\\.\\d+\\.\\d+/tcp/4001/p2p/${peerId}$`))
    expect(record.events.filter(e => e.type === 'external:probe' && e.node === 'ext').map(e => 'ok' in e && e.ok)).toEqual([true, true])
    // Only this file names a docker-mode node "ext", and its tests run one at a time: any such container is ours.
    const client = await getContainerRuntimeClient()
    const left = await client.container.dockerode.listContainers({ all: true, filters: { label: [RUN_LABEL] } })
    expect(left.flatMap(c => c.Names).filter(n => /-ext-/.test(n))).toEqual([])
  }, 180_000)

  it('an image is skipped outside docker mode, saying so', async () => {
    const record = await run(scenarioOf({
      name: 'ext-image-tcp',
      nodes: [{ role: 'external', name: 'ext', image: 'any:tag', multiaddr: `/ip4/{host}/tcp/{port}/p2p/${DEMO_PEER_ID}` }],
      steps: [{ action: 'start', nodes: ['ext'] }, UNREACHED]
    }))
    expect({ status: record.status, reason: record.reason }).toEqual({ status: 'skipped', reason: 'runs an external bootstrap image as a container of the run: run it with --mode docker' })
  })

  it('is skipped in memory mode, saying which modes run it', async () => {
    const record = await runScenario(scenarios[0]!.scenario, { mode: 'memory', seed: 1, createBackend })
    expect(record.status).toBe('skipped')
    expect(record.reason).toMatch(/--mode tcp, shards, process or docker/)
  })
})

describe('external nodes: failures are clear and leave nothing behind', () => {
  it('a command that exits at start is an error naming the node and its exit', async () => {
    const record = await run(scenarioOf({
      name: 'ext-exits',
      nodes: [demoNode({ command: ['{node}', '-e', 'console.error("cannot bind"); process.exit(3)'] })],
      steps: [{ action: 'start', nodes: ['ext'] }, UNREACHED]
    }))
    expect(record.status).toBe('error')
    expect(record.reason).toMatch(/node "ext" exited before it was ready \(code 3\).*cannot bind/s)
  })

  it('a process that listens but does not speak libp2p fails its start with the probe\'s finding, and is killed', async () => {
    const marker = `not-libp2p-${process.pid}`
    const record = await run(scenarioOf({
      name: 'ext-not-libp2p',
      nodes: [demoNode({
        command: ['{node}', '-e', `require('net').createServer(s => s.on('data', () => {})).listen({{port}}, '127.0.0.1', () => console.log('listening on ${marker}'))`],
        startTimeoutMs: 2_000
      })],
      steps: [{ action: 'start', nodes: ['ext'] }, UNREACHED]
    }))
    expect(record.status).toBe('error')
    expect(record.reason).toMatch(/external node "ext" does not answer a libp2p ping at \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    expect(record.events.find(e => e.type === 'external:probe')).toMatchObject({ ok: false, speaksDht: null })
    expect(await waitUntil(() => pidsWithArgText(marker).length === 0, 2_000)).toBe(true)
  })

  it('an interrupted run stops the external process it started', async () => {
    const controller = new AbortController()
    const scenario = scenarioOf({
      name: 'ext-interrupted',
      nodes: [demoNode(), { role: 'peer', name: 'A' }],
      steps: [
        { action: 'start', nodes: ['ext', 'A'] },
        { action: 'connect', nodes: ['A'], expect: { success: true } },
        { action: 'pause', ms: 600_000 }
      ]
    })
    let runningDuringPause: number[] = []
    const record = await runScenario(scenario, {
      mode: 'tcp', seed: 7, file: path.join(DIR, 'ext-interrupted.yaml'), createBackend, signal: controller.signal,
      // Ctrl-C in the middle of the run, with the external process up and a peer connected to it.
      onStep: (_name, label) => {
        if (!label.startsWith('pause')) return
        runningDuringPause = demoPids()
        controller.abort(new Error('interrupted'))
      }
    })
    expect(runningDuringPause).toHaveLength(1)
    expect({ status: record.status, reason: record.reason }).toEqual({ status: 'error', reason: 'interrupted' })
    expect(record.steps.filter(s => s.ok).map(s => s.kind)).toEqual(['start', 'connect'])
    expect(demoPids()).toEqual([])
  })

  it('a node already running (no command) is probed, used by peers, and not stopped by chiral-sim', async () => {
    const port = await freePort()
    const child = spawn(process.execPath, [path.join(DIR, SCRIPT), '--port', String(port), '--seed', DEMO_SEED, '--protocol', '/other/kad/1.0.0'], { stdio: ['ignore', 'pipe', 'inherit'] })
    cleanups.push(() => { child.kill('SIGKILL') })
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => { resolve() })
      child.once('exit', code => { reject(new Error(`bootstrap script exited: ${code}`)) })
    })
    const multiaddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${DEMO_PEER_ID}`
    const base = { nodes: [{ role: 'external', name: 'ext', multiaddr, dhtProtocol: '/other/kad/1.0.0' }, { role: 'peer', name: 'A' }] }
    const ok = await run(scenarioOf({
      name: 'ext-running',
      ...base,
      steps: [
        { action: 'start', nodes: ['ext', 'A'] },
        // A names no DHT protocol: it takes the external bootstrap's, and the bootstrap admits it.
        { action: 'connect', nodes: ['A'], expect: { success: true, bootstrap: 'ext' } },
        { action: 'health', nodes: ['A'], expect: { isReachable: true } },
        { action: 'wait', until: { sees: { node: 'A', peers: ['ext'] } }, timeoutMs: 10_000 }
      ]
    }))
    expect({ status: ok.status, reason: ok.reason, failed: ok.assertions.filter(a => !a.passed) }).toEqual({ status: 'passed', reason: undefined, failed: [] })
    expect(ok.events.find(e => e.type === 'external:probe')).toMatchObject({ ok: true, speaksDht: true, dhtProtocol: '/other/kad/1.0.0' })
    expect(child.exitCode).toBeNull()

    // Not chiral-sim's to stop: validation says so before anything runs.
    const kill = ScenarioSchema.safeParse({ name: 'ext-running-kill', title: 'x', ...base, steps: [{ action: 'start', nodes: ['ext'] }, { action: 'kill', nodes: ['ext'] }, UNREACHED] })
    expect(kill.error?.issues.map(i => `${i.path.join('.')}: ${i.message}`)).toEqual([expect.stringMatching(/^steps\.1\.nodes\.0: external node "ext" is not started by chiral-sim \(it has no command, image or reference\), so a scenario cannot kill it/)])
    expect(child.exitCode).toBeNull()
  })

  it('an external node that does not serve the scenario\'s DHT protocol is flagged (cause 7)', async () => {
    const record = await run(scenarioOf({
      name: 'ext-other-protocol',
      nodes: [demoNode({ dhtProtocol: '/chiral/kad/1.0.0' })],
      steps: [
        { action: 'start', nodes: ['ext'] },
        { action: 'assert', check: { event: { node: 'ext', type: 'external:probe', where: { ok: true, speaksDht: false } } } }
      ]
    }))
    expect({ status: record.status, reason: record.reason }).toEqual({ status: 'passed', reason: undefined })
    expect(record.events.find(e => e.type === 'external:probe')).toMatchObject({ ok: true, speaksDht: false })
    expect(record.events.some(e => e.type === 'log' && e.node === 'ext' && /does not announce \/chiral\/kad\/1\.0\.0.*cause 7/.test(e.message))).toBe(true)
  })

  it('the black box has no control channel: a command step on it is refused by validation', () => {
    const bad = ScenarioSchema.safeParse({
      name: 'ext-no-control', title: 'x',
      nodes: [demoNode()],
      steps: [{ action: 'start', nodes: ['ext'] }, { action: 'verify', nodes: ['ext'], expect: { overall: 'verified' } }]
    })
    expect(bad.error?.issues.map(i => `${i.path.join('.')}: ${i.message}`)).toEqual(['steps.1.nodes.0: "ext" is an external node; "verify" runs on peers'])
  })

  it('the schema refuses {port} and readyLine without a command', () => {
    const bad = ScenarioSchema.safeParse({
      name: 'x', title: 'x', description: 'x',
      nodes: [{ role: 'external', name: 'e', multiaddr: `/ip4/127.0.0.1/tcp/{port}/p2p/${DEMO_PEER_ID}`, readyLine: 'up' }],
      steps: [{ action: 'start', nodes: ['e'] }]
    })
    expect(bad.success).toBe(false)
    const messages = bad.error!.issues.map(i => `${i.path.join('.')}: ${i.message}`)
    expect(messages).toEqual(expect.arrayContaining([expect.stringMatching(/multiaddr: \{port\} needs a command or an image/), expect.stringMatching(/readyLine: readyLine needs a command or an image/)]))
  })
})

/**
 * Verdicts against bootstraps configured the way real deployments configure them (issue 9): the demo bootstrap's
 * knobs stand in for rust-libp2p and go-libp2p settings, run through the external role in tcp mode as a user
 * pointing chiral-sim at the real network's bootstrap would. In this file, so that they never run beside the other
 * external tests (each checks that no demo process is left).
 */
/** The demo bootstrap with some of its knobs turned. */
const ext = (args: string[] = [], over: Record<string, unknown> = {}): Record<string, unknown> =>
  demoNode({ command: ['{node}', SCRIPT, '--port', '{port}', '--seed', DEMO_SEED, ...args], ...over })

async function runAgainst (name: string, nodes: unknown[], steps: unknown[]): Promise<ScenarioRecord> {
  const scenario = ScenarioSchema.parse({ name, title: name, description: 'external verdict test', nodes, steps })
  const record = await runScenario(scenario, { mode: 'tcp', seed: 7, file: path.join(DIR, `${name}.yaml`), createBackend })
  expect(demoPids()).toEqual([])
  return record
}

const failedOf = (r: ScenarioRecord): string[] => r.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${JSON.stringify(a.expected)}, got ${JSON.stringify(a.actual)}`)
const passed = (r: ScenarioRecord): unknown => ({ status: r.status, reason: r.reason, failed: failedOf(r) })
const PASSED = { status: 'passed', reason: undefined, failed: [] }


describe('external bootstraps configured as real deployments are', () => {
  it('healthy when they close idle connections right after identify (rust-libp2p ≤ 0.54, idle timeout 0)', async () => {
    const record = await runAgainst('ext-idle-close', [ext(['--idle-timeout-ms', '0']), { role: 'peer', name: 'A', autoMonitor: false }], [
      { action: 'start', nodes: ['ext', 'A'] },
      { action: 'connect', nodes: ['A'], expect: { success: true, bootstrap: 'ext' } },
      // Each check finds the connection gone (or going): the bootstrap is judged by a ping on a fresh one.
      { action: 'health', nodes: ['A'], expect: { isReachable: true } },
      { action: 'pause', ms: 200 },
      { action: 'health', nodes: ['A'], expect: { isReachable: true } },
      { action: 'pause', ms: 200 },
      { action: 'health', nodes: ['A'], expect: { isReachable: true } },
      { action: 'monitor', nodes: ['A'] },
      { action: 'wait', until: { health: { node: 'A', status: 'green' } }, timeoutMs: 10_000 },
      { action: 'health', nodes: ['A'], expect: { isReachable: true, status: 'green' } }
    ])
    expect(passed(record)).toEqual(PASSED)
    // The bootstrap did close the connections: the knob works, and the health check saw through it.
    expect(record.events.filter(e => e.node === 'A' && e.type === 'connection:close').length).toBeGreaterThan(0)
    expect(record.events.find(e => e.type === 'external:probe')).toMatchObject({ ok: true, speaksDht: true })
  }, 60_000)

  it('verified through an idle-closing bootstrap: the connection it closed is not a lost bootstrap', async () => {
    // The interop matrix's rust / idle-0 cell: both peers found each other, yet "Discovery broken", because step 1
    // only looked for an open connection and the bootstrap had closed it the instant identify ended.
    const record = await runAgainst('ext-idle-verify', [ext(['--idle-timeout-ms', '0']), { role: 'peer', name: 'A', autoMonitor: false }, { role: 'peer', name: 'B', autoMonitor: false }], [
      { action: 'start', nodes: ['ext', 'A', 'B'] },
      { action: 'connect', nodes: ['A', 'B'], expect: { success: true, bootstrap: 'ext' } },
      { action: 'waitBidirectional', nodes: ['A', 'B'], withinMs: 15_000 },
      { action: 'pause', ms: 300 },
      { action: 'verify', nodes: ['A', 'B'], expect: { overall: 'verified', checks: { bootstrapConnected: true } } }
    ])
    expect(passed(record)).toEqual(PASSED)
    const step = record.events.find(e => e.node === 'A' && e.type === 'discovery:step' && (e as { step?: string }).step === 'bootstrapConnected')
    expect(JSON.stringify(step)).toMatch(/closes idle connections/)
  }, 60_000)

  it('"rejected" with what the bootstrap did when it drops a peer after identify for its agent version', async () => {
    const record = await runAgainst('ext-admission', [
      ext(['--admit-agent', '^chiral-admitted/']),
      { role: 'peer', name: 'A', agentVersion: 'some-client/0.1.0' },
      { role: 'peer', name: 'B', agentVersion: 'chiral-admitted/1.0.0' }
    ], [
      { action: 'start', nodes: ['ext', 'A', 'B'] },
      { action: 'connect', nodes: ['A'], expect: { success: false, category: 'rejected', message: 'Bootstrap closed the connection after identify - this client was not admitted' } },
      { action: 'connect', nodes: ['B'], expect: { success: true, bootstrap: 'ext' } }
    ])
    expect(passed(record)).toEqual(PASSED)
    const failure = record.events.find(e => e.node === 'A' && e.type === 'connect:done')
    expect(failure).toMatchObject({ success: false, error: { category: 'rejected', detail: expect.stringMatching(/closed the connection after identify.*agent rejected\? \(this node identifies as "some-client\/0\.1\.0"\)/) } })
    // The same cause, the same verdict, every attempt: one attempt, no retry (only "busy" is retried).
    expect(record.events.filter(e => e.node === 'A' && e.type === 'connect:result').map(e => 'outcome' in e && e.outcome)).toEqual(['rejected'])
  }, 60_000)

  it('"protocol" at connect when the bootstrap speaks another DHT protocol', async () => {
    const record = await runAgainst('ext-other-dht', [ext(['--protocol', '/other/kad/1.0.0'], { dhtProtocol: '/ipfs/kad/1.0.0' }), { role: 'peer', name: 'A' }], [
      { action: 'start', nodes: ['ext', 'A'] },
      { action: 'connect', nodes: ['A'], expect: { success: false, category: 'protocol' } }
    ])
    expect(passed(record)).toEqual(PASSED)
    expect(record.events.find(e => e.node === 'A' && e.type === 'connect:done')).toMatchObject({
      error: { detail: expect.stringMatching(/does not serve \/ipfs\/kad\/1\.0\.0: it announces .*\/other\/kad\/1\.0\.0/) }
    })
  }, 60_000)

  it('never "verified" when two connected peers see nothing because the bootstrap answers with no peers', async () => {
    const record = await runAgainst('ext-empty-answers', [ext(['--routable-only']), { role: 'peer', name: 'A' }, { role: 'peer', name: 'B' }], [
      { action: 'start', nodes: ['ext', 'A', 'B'] },
      { action: 'connect', nodes: ['A', 'B'], expect: { success: true, bootstrap: 'ext' } },
      { action: 'verify', nodes: ['A', 'B'], expect: { firstPeer: false } },
      // What a scenario that wants symmetry writes: it must fail over two mutually blind peers.
      { action: 'matrix', expect: { asymmetries: [] } },
      { action: 'matrix', expect: { asymmetries: [], blind: [{ peers: ['A', 'B'], cause: 'empty-answers' }] } }
    ])
    const verdicts = record.events.filter(e => e.type === 'discovery:status').map(e => 'status' in e ? e.status.overall : '')
    expect(verdicts).toHaveLength(2)
    expect(verdicts.filter(v => v === 'verified')).toEqual([])
    const failed = record.assertions.filter(a => !a.passed)
    expect(failed.map(a => a.id)).toEqual(['3-matrix'])
    expect(String(failed[0]!.actual)).toMatch(/A and B see neither each other: empty-answers/)
    expect(record.matrices?.map(m => m.step)).toEqual([3, 4])
    expect(record.matrices?.[0]?.matrix.blind?.[0]).toMatchObject({ peers: ['A', 'B'], cause: 'empty-answers', explanation: expect.stringMatching(/ext answered A's FIND_NODE of itself with 0 peers and B's FIND_NODE of itself with 0 peers/) })
    expect(record.steps.map(s => s.ok)).toEqual([true, true, true, false, true])
  }, 60_000)
})
