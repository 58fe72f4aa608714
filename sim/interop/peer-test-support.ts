import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { commandNames } from '../../nodes/commands.ts'
import { NodeConfigSchema } from '../../nodes/config.ts'
import { privateKeyFromSeed } from '../../nodes/libp2p.ts'
import { RemoteNode } from '../../nodes/control/client.ts'
import type { NodeEvent } from '../../nodes/events.ts'
import type { ForeignPeerImplementation } from '../../scenarios/reference-peer.ts'
import { ScenarioSchema } from '../../scenarios/schema.ts'
import { createBackend } from '../backends/index.ts'
import { spawnReferencePeer } from '../backends/reference-peer.ts'
import { ChildNode } from '../host/child.ts'
import { runScenario } from '../runner/run-scenario.ts'
import { referenceBinaryMissing, referenceBinaryPath } from './binaries.ts'

/**
 * What the go and rust peer tests share (sim/interop/go-peer.test.ts, rust-peer.test.ts): starting reference
 * bootstraps and peers that are torn down after each test, and the contract checks every foreign peer must pass.
 * A test file without the binary is skipped, saying why; under CI=true a missing binary fails.
 */

export function gateOn (...impls: ForeignPeerImplementation[]): { gate: boolean, why: string, missing: string | undefined } {
  const missing = impls.map(referenceBinaryMissing).find(m => m != null)
  const gate = missing != null && process.env.CI !== 'true'
  return { gate, why: gate ? ` — skipped: ${missing}` : '', missing }
}

/** Everything a test started; `afterEach(stopAll)`. */
export const started: Array<{ kill: () => Promise<void> }> = []
export async function stopAll (): Promise<void> {
  await Promise.allSettled(started.splice(0).map(async s => { await s.kill() }))
}

/** A reference node as a plain bootstrap (no control channel); its multiaddr once it listens. */
export async function referenceBootstrap (impl: ForeignPeerImplementation, flags: string[] = []): Promise<ChildNode<string>> {
  const child = await ChildNode.spawnCommand({
    name: `${impl}-boot`, file: referenceBinaryPath(impl), args: ['--port', '0', '--exit-on-stdin-close', ...flags],
    readyLine: line => /^listening on (\S+)$/.exec(line)?.[1], dieWithParent: true, startTimeoutMs: 15_000
  })
  started.push(child)
  return child
}

/** A reference node as a scenario peer, started the way the runner starts it, behind its control channel. */
export async function referencePeer (impl: ForeignPeerImplementation, name: string, bootstrapAddrs: string[] = [], extra: Record<string, unknown> = {}): Promise<RemoteNode & { token: string }> {
  const config = NodeConfigSchema.parse({
    name, role: 'peer', transport: 'tcp', identitySeed: `${impl}-peer-test/${name}`, bootstrapAddrs,
    dht: { protocol: '/ipfs/kad/1.0.0' }, timing: { healthCheckIntervalMs: 500 }, ...extra
  })
  const child = await spawnReferencePeer(impl, config, { startTimeoutMs: 15_000 })
  started.push(child)
  const handle = new RemoteNode({ name, role: 'peer', url: child.ready.control, token: child.ready.token })
  started.push({ kill: async () => { await handle.close() } })
  return Object.assign(handle, { token: child.ready.token })
}

export async function until (limitMs: number, cond: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + limitMs
  while (!(await cond()) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  return await cond()
}

/**
 * The contract as a foreign peer serves it, alone behind a bootstrap `boot` of any implementation: info, connect,
 * health, inspect, the first-peer verdict, the events the reports read, authentication and request strictness,
 * and every command of nodes/commands.ts known (implemented, or answered not-supported).
 */
export async function checkContract (impl: ForeignPeerImplementation, boot: string, libp2p: string): Promise<void> {
  const a = await referencePeer(impl, 'A', [boot])
  const events: NodeEvent[] = []
  const unsubscribe = a.subscribe(ev => { events.push(ev) })
  const info = await a.call('info', {})
  expect(info).toMatchObject({ name: 'A', role: 'peer', dhtProtocol: '/ipfs/kad/1.0.0' })
  expect(info.versions.libp2p).toBe(libp2p)

  const connected = await a.call('connectWithTimeout', {})
  expect(connected.success).toBe(true)
  expect(connected.attempts).toHaveLength(1)
  const bootId = boot.split('/p2p/')[1]!
  expect(await until(10_000, async () => (await a.call('getHealth', {})).status === 'green')).toBe(true)
  const inspection = await a.call('inspect', {})
  expect(inspection.routingTable).toContain(bootId)
  expect(inspection.connections.map(c => c.peerId)).toContain(bootId)
  expect(inspection.protocols).toContain('/ipfs/kad/1.0.0')
  expect(await a.call('getDhtRoutingTableSize', {})).toEqual({ size: 1, peers: 0 })

  // A peer alone behind a bootstrap that does not say who else is online cannot claim "you might be first".
  const alone = await a.call('verifyPeerDiscovery', {})
  expect(alone).toMatchObject({ overall: 'unknown', firstPeer: false, bootstrapConnected: true, dhtReadWrite: true })
  const metrics = await a.call('getMetrics', {})
  expect(metrics.connectionAttempts).toHaveLength(1)
  expect(metrics.lastSuccessfulDhtWrite).not.toBeNull()
  expect(metrics.kadRoutingTableSize).toBe(1)

  // Its events pass the contract's event schema (the client drops any that do not): what the runner's evidence,
  // the timeline and the KPIs read.
  for (const type of ['routing:add', 'bootstrap:identified', 'connect:done', 'monitor:started', 'health:check', 'health:status', 'dht:test', 'discovery:status']) {
    expect([type, await until(5_000, () => events.some(e => e.type === type))]).toEqual([type, true])
  }
  expect(events.every(e => e.node === 'A')).toBe(true)
  unsubscribe()

  const ask = async (headers: Record<string, string>, body?: string): Promise<[number, string]> => {
    const res = await fetch(`${a.url}/commands/getMetrics`, { method: 'POST', headers, ...(body != null ? { body } : {}) })
    return [res.status, ((await res.json()) as { error?: { code: string } }).error?.code ?? 'ok']
  }
  const auth = { authorization: `Bearer ${a.token}` }
  expect(await ask({})).toEqual([401, 'unauthorized'])
  expect(await ask({ authorization: `Bearer ${'0'.repeat(64)}` })).toEqual([401, 'unauthorized'])
  expect(await ask({ ...auth, origin: 'https://evil.example' })).toEqual([403, 'forbidden'])
  expect(await ask({ ...auth, 'content-type': 'text/plain' }, '{}')).toEqual([415, 'bad-request'])
  expect(await ask({ ...auth, 'content-type': 'application/json' }, '{"nope":1}')).toEqual([400, 'bad-request'])
  expect(await ask(auth)).toEqual([200, 'ok'])

  // Every command of the contract is known to it: implemented, or answered not-supported, never "unknown command"
  // (a command added to nodes/commands.ts and not to the node fails here); the unknown field is named.
  for (const name of commandNames) {
    const res = await fetch(`${a.url}/commands/${name}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"__probe":1}' })
    const body = (await res.json()) as { error?: { code: string, field?: string } }
    const fileTransfer = name === 'shareFile' || name === 'downloadFile'
    expect([name, body.error?.code]).toEqual([name, fileTransfer ? 'not-supported' : 'bad-request'])
    if (!fileTransfer) expect([name, body.error?.field]).toEqual([name, '__probe'])
  }
}

/**
 * A scenario with a reference bootstrap `boot` of `bootImpl`, a peer `F` of `impl` and a js peer `J` that discover
 * each other and verify, run in `mode`: everything up to the share held; the share could not be made, so the run is
 * no pass, and the runner names the check.
 */
export async function runForeignPeerScenario (impl: ForeignPeerImplementation, bootImpl: ForeignPeerImplementation, mode: 'tcp' | 'process', bootFlags: string[] = []): Promise<void> {
  const seed = `${impl}-peer-test-boot`
  const bootId = peerIdFromPrivateKey(await privateKeyFromSeed(seed)).toString()
  const scenario = ScenarioSchema.parse({
    name: `${impl}-peer-in-a-scenario`,
    title: `a ${impl} peer and a js peer discover each other through a ${bootImpl} bootstrap`,
    nodes: [
      { role: 'external', name: 'boot', command: [referenceBinaryPath(bootImpl), '--host', '{host}', '--port', '{port}', '--seed', seed, '--exit-on-stdin-close', ...bootFlags], readyLine: 'listening on', multiaddr: `/ip4/{host}/tcp/{port}/p2p/${bootId}`, startTimeoutMs: 15_000 },
      { role: 'peer', name: 'F', implementation: impl },
      { role: 'peer', name: 'J' }
    ],
    steps: [
      { action: 'start', nodes: ['boot', 'F', 'J'] },
      { action: 'connect', nodes: ['F', 'J'], expect: { success: true } },
      { action: 'waitBidirectional', nodes: ['F', 'J'], withinMs: 15_000 },
      { action: 'verify', nodes: ['F', 'J'], expect: { overall: 'verified', checks: { peerDialing: true } } },
      { action: 'matrix', expect: { asymmetries: [] } },
      { action: 'share', node: 'F', as: 'doc', file: { name: 'doc.txt', text: 'hello' } },
      { action: 'search', node: 'J', file: 'doc', expect: { providers: ['F'] } }
    ]
  })
  const record = await runScenario(scenario, { mode, seed: 11, createBackend })
  const failed = record.assertions.filter(a => !a.passed)
  expect(failed, JSON.stringify(failed)).toEqual([])
  expect(record.assertions.length).toBeGreaterThan(4)
  expect(record.status).toBe('error')
  expect(record.reason).toMatch(new RegExp(`could not make the check "F shares doc.txt as doc": command "shareFile" is not implemented by chiral-${impl}-node`))
  expect(record.uncheckable).toEqual([expect.objectContaining({ step: 5, label: 'F shares doc.txt as doc' })])
}

/**
 * What `validate` and the runner refuse of a peer `name` of `impl` before starting anything: `knob`, a DHT setting
 * the node lacks (refused at its field with `message`), fault links through Toxiproxy, an unknown implementation,
 * and memory mode (skipped, saying which peer needs which mode).
 */
export function describeRefusals (impl: ForeignPeerImplementation, name: string, knob: { dht: Record<string, unknown>, field: string, message: RegExp }): void {
  const base = {
    name: `${impl}-peer-refused`, title: 't',
    nodes: [{ role: 'bootstrap', name: 'boot' }, { role: 'peer', name, implementation: impl }],
    steps: [{ action: 'start', nodes: ['boot', name] }, { action: 'connect', nodes: [name], expect: { success: true } }]
  }
  const withPeer = (over: Record<string, unknown>): unknown => ({ ...base, nodes: [base.nodes[0], { ...base.nodes[1], ...over }] })
  describe(`a ${impl} peer in a scenario: what validate and the runner refuse before starting anything`, () => {
    it(`accepts it; rejects a knob the ${impl} node lacks, naming the field, and fault links it cannot be wired through`, () => {
      expect(ScenarioSchema.safeParse(base).success).toBe(true)
      const refused = ScenarioSchema.safeParse(withPeer({ dht: knob.dht }))
      expect(refused.error?.issues.map(i => [i.path.join('.'), i.message])).toEqual([[knob.field, expect.stringMatching(knob.message)]])
      const faults = ScenarioSchema.safeParse({ ...base, steps: [...base.steps, { action: 'fault', target: { links: [`${name}->boot`] }, down: true }] })
      expect(faults.error?.issues.some(i => i.path.join('.') === 'nodes.1.implementation')).toBe(true)
      expect(ScenarioSchema.safeParse(withPeer({ implementation: 'lisp' })).success).toBe(false)
    })

    it('skips it in memory mode, saying which peer needs which mode', async () => {
      const record = await runScenario(ScenarioSchema.parse(base), { mode: 'memory', seed: 1, createBackend })
      expect(record.status).toBe('skipped')
      expect(record.reason).toBe(`has peers of another implementation (${name}: ${impl}), processes on this machine: run it with --mode tcp or process`)
    })
  })
}
