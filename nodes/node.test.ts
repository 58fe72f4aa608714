import net from 'node:net'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { startBlackhole, type Blackhole } from '../sim/host/blackhole.ts'
import { CommandError, type CommandResponse } from './commands.ts'
import type { NodeConfigInput } from './config.ts'
import { LocalNode } from './node.ts'

const started: Array<LocalNode | Blackhole> = []
afterEach(async () => {
  await Promise.allSettled(started.splice(0).reverse().map(async n => { if (n instanceof LocalNode) await n.stop(); else await n.close() }))
})

type Kind = 'memory' | 'tcp'
const FAST = { timeScale: 0.1 } as const

function seed (label: string): string {
  return `${label}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`
}

async function start (input: NodeConfigInput): Promise<LocalNode> {
  const node = await LocalNode.start(input)
  started.push(node)
  return node
}

async function bootstrap (transport: Kind, label: string, extra: Partial<NodeConfigInput> = {}): Promise<LocalNode> {
  return await start({ name: `boot-${label}`, role: 'bootstrap', transport, identitySeed: seed(`boot-${label}`), autoMonitor: false, timing: FAST, ...extra })
}

async function peer (transport: Kind, label: string, bootstrapAddrs: string[], extra: Partial<NodeConfigInput> = {}): Promise<LocalNode> {
  return await start({ name: `peer-${label}`, role: 'peer', transport, identitySeed: seed(`peer-${label}`), bootstrapAddrs, autoMonitor: false, timing: FAST, ...extra })
}

async function until<T> (what: string, fn: () => Promise<T>, ok: (v: T) => boolean, deadlineMs = 10_000, stepMs = 100): Promise<T> {
  const end = Date.now() + deadlineMs
  let last: T = await fn()
  while (!ok(last)) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`)
    await new Promise(resolve => setTimeout(resolve, stepMs))
    last = await fn()
  }
  return last
}

/** A TCP port on 127.0.0.1 that nobody listens on (bound, read, released). */
async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}

/** An address nobody answers, with the valid /p2p/ id of a node that is not running. */
async function closedAddr (transport: Kind, peerId: string): Promise<string> {
  return transport === 'tcp'
    ? `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${peerId}`
    : `/memory/nobody-${crypto.randomUUID()}/p2p/${peerId}`
}

const withoutP2p = (addr: string): string => addr.replace(/\/p2p\/[^/]+$/, '')

describe.each(['memory', 'tcp'] as const)('LocalNode (%s)', (transport) => {
  it('bootstrap and two peers: connect, discover each other, verify', { timeout: 30_000 }, async () => {
    const boot = await bootstrap(transport, 'two')
    const bootAddr = boot.multiaddrs()[0] ?? ''
    const a = await peer(transport, 'two-a', [bootAddr])
    const b = await peer(transport, 'two-b', [bootAddr])

    for (const p of [a, b]) {
      const r = await p.call('connectWithTimeout', {})
      expect(r.success, JSON.stringify(r)).toBe(true)
      expect(r.bootstrap).toBe(bootAddr)
      expect(r.attempts).toHaveLength(1)
    }
    const [wa, wb] = await Promise.all([
      a.call('waitForBidirectionalDiscovery', { peerIds: [b.peerId.toString()] }),
      b.call('waitForBidirectionalDiscovery', { peerIds: [a.peerId.toString()] })
    ])
    expect(wa.success, JSON.stringify(wa)).toBe(true)
    expect(wb.success, JSON.stringify(wb)).toBe(true)

    for (const p of [a, b]) {
      await until(`${p.name} routing table peers >= 1`, async () => await p.call('getDhtRoutingTableSize', {}), t => t.peers >= 1)
    }
    const [va, vb] = await Promise.all([a.call('verifyPeerDiscovery', {}), b.call('verifyPeerDiscovery', {})])
    expect(va.overall, JSON.stringify(va)).toBe('verified')
    expect(vb.overall, JSON.stringify(vb)).toBe('verified')
    expect((await a.call('inspect', {})).routingTable).toContain(b.peerId.toString())
    expect((await b.call('inspect', {})).routingTable).toContain(a.peerId.toString())
  })

  it('a peer alone is verified as the first peer', { timeout: 20_000 }, async () => {
    const boot = await bootstrap(transport, 'alone')
    const a = await peer(transport, 'alone-a', boot.multiaddrs())
    expect((await a.call('connectWithTimeout', {})).success).toBe(true)
    const v = await a.call('verifyPeerDiscovery', {})
    expect(v.overall, JSON.stringify(v)).toBe('verified')
    expect(v.firstPeer).toBe(true)
    expect(v.message).toContain('you might be first')
  })

  it('shares a 300 KB file that the other peer finds and downloads', { timeout: 30_000 }, async () => {
    const boot = await bootstrap(transport, 'file')
    const a = await peer(transport, 'file-a', boot.multiaddrs())
    const b = await peer(transport, 'file-b', boot.multiaddrs())
    expect((await a.call('connectWithTimeout', {})).success).toBe(true)
    expect((await b.call('connectWithTimeout', {})).success).toBe(true)
    await until('A in B\'s routing table', async () => await b.call('inspect', {}), i => i.routingTable.includes(a.peerId.toString()))

    const bytes = Buffer.alloc(300 * 1024)
    for (let i = 0; i < bytes.length; i += 32) createHash('sha256').update(`block-${i}`).digest().copy(bytes, i)
    const rec = await a.call('shareFile', { name: 'data.bin', contentBase64: bytes.toString('base64') })
    expect(rec.size).toBe(bytes.length)
    expect(rec.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))

    const { providers } = await until('A as a provider', async () => await b.call('getProviderRecords', { cid: rec.cid }), r => r.providers.includes(a.peerId.toString()))
    expect(providers).toContain(a.peerId.toString())
    const dl = await b.call('downloadFile', { cid: rec.cid })
    expect(dl.success, JSON.stringify(dl)).toBe(true)
    expect(dl.hashVerified).toBe(true)
    expect(dl.provider).toBe(a.peerId.toString())
    expect(dl.size).toBe(bytes.length)
  })

  it('a full bootstrap answers busy, retried twice with the busy timeout', { timeout: 20_000 }, async () => {
    const boot = await bootstrap(transport, 'busy', { maxPeers: 1 })
    const a = await peer(transport, 'busy-a', boot.multiaddrs())
    const b = await peer(transport, 'busy-b', boot.multiaddrs())
    expect((await a.call('connectWithTimeout', {})).success).toBe(true)
    const r = await b.call('connectWithTimeout', {})
    expect(r.success).toBe(false)
    expect(r.error?.category, JSON.stringify(r)).toBe('busy')
    expect(r.attempts.map(x => x.outcome)).toEqual(['busy', 'busy', 'busy'])
    expect(r.attempts.map(x => x.timeoutMs)).toEqual([1000, 1500, 1500])
    expect(b.log.since(0).filter(e => e.type === 'connect:retry')).toHaveLength(2)
    expect(boot.log.since(0).some(e => e.type === 'bootstrap:busy' && e.peerId === b.peerId.toString())).toBe(true)
  })

  it('fails over from a closed address to the next bootstrap', { timeout: 20_000 }, async () => {
    const boot = await bootstrap(transport, 'failover')
    const gone = await bootstrap(transport, 'failover-gone')
    const goneId = gone.peerId.toString()
    await gone.stop()
    const dead = await closedAddr(transport, goneId)
    const real = boot.multiaddrs()[0] ?? ''
    const a = await peer(transport, 'failover-a', [dead, real])
    const r = await a.call('connectWithTimeout', {})
    expect(r.success, JSON.stringify(r)).toBe(true)
    expect(r.bootstrap).toBe(real)
    expect(r.attempts).toHaveLength(2)
    expect(r.attempts[0]?.outcome, JSON.stringify(r.attempts[0])).toBe('refused')
    expect(r.attempts[1]?.outcome).toBe('success')
  })

  it('monitoring goes green, red when the bootstrap stops, green again when it returns', { timeout: 40_000 }, async () => {
    const bootSeed = seed('mon-boot')
    const bootConfig: NodeConfigInput = {
      name: 'boot-mon', role: 'bootstrap', transport, identitySeed: bootSeed, autoMonitor: false, timing: { timeScale: 0.05 }
    }
    const boot1 = await start(bootConfig)
    const bootAddr = boot1.multiaddrs()[0] ?? ''
    const listen = transport === 'tcp' ? [withoutP2p(bootAddr)] : undefined
    const a = await peer(transport, 'mon-a', [bootAddr], { autoMonitor: true, timing: { timeScale: 0.05 } })
    expect((await a.call('connectWithTimeout', {})).success).toBe(true)
    await until('green', async () => await a.call('getHealth', {}), h => h.status === 'green', 10_000)

    await boot1.stop()
    await until('red', async () => await a.call('getHealth', {}), h => h.status === 'red', 15_000)

    const boot2 = await start({ ...bootConfig, ...(listen != null ? { listen } : {}) })
    expect(boot2.peerId.toString()).toBe(boot1.peerId.toString())
    expect(boot2.multiaddrs()).toContain(bootAddr)
    await until('green again', async () => await a.call('getHealth', {}), h => h.status === 'green', 15_000)
    expect(a.log.since(0).some(e => e.type === 'health:recovered' && e.address === bootAddr)).toBe(true)
  })
})

describe('LocalNode configuration errors', () => {
  it('rejects an out-of-range timing and a bad request, and keeps answering', async () => {
    const bad = LocalNode.start({ name: 'bad', role: 'peer', identitySeed: seed('bad'), autoMonitor: false, timing: { connectionTimeoutMs: 4000 } })
    await expect(bad).rejects.toThrow(/connectionTimeoutMs/)
    await expect(bad).rejects.toHaveProperty('name', 'ZodError')

    const boot = await bootstrap('memory', 'cfg')
    const a = await peer('memory', 'cfg-a', boot.multiaddrs())
    const err = await a.call('connectWithTimeout', { timeoutMs: 40000 }).then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(CommandError)
    expect((err as CommandError).code).toBe('bad-request')
    expect((err as CommandError).field).toBe('timeoutMs')
    expect((err as CommandError).message).toContain('timeoutMs')
    const info = await a.call('info', {})
    expect(info.peerId).toBe(a.peerId.toString())
  })
})

describe('LocalNode over TCP in real time', () => {
  it('a hung bootstrap times out at the configured deadline and leaves no connection', { timeout: 30_000 }, async () => {
    const hole = await startBlackhole({ transport: 'tcp', name: 'node-test-hole' })
    started.push(hole)
    const holeId = hole.multiaddr.split('/p2p/')[1] ?? ''
    // Real timing (timeScale 1); the two run side by side so the test takes ~10 s, not 15.
    const def = await start({ name: 'hole-default', role: 'peer', transport: 'tcp', identitySeed: seed('hole-default'), bootstrapAddrs: [hole.multiaddr], autoMonitor: false })
    const five = await start({ name: 'hole-five', role: 'peer', transport: 'tcp', identitySeed: seed('hole-five'), bootstrapAddrs: [hole.multiaddr], autoMonitor: false, timing: { connectionTimeoutMs: 5000 } })
    const timed = async (n: LocalNode): Promise<{ r: CommandResponse<'connectWithTimeout'>, ms: number }> => {
      const t0 = Date.now()
      const r = await n.call('connectWithTimeout', {})
      return { r, ms: Date.now() - t0 }
    }
    const [d, f] = await Promise.all([timed(def), timed(five)])
    for (const [res, expected] of [[d, 10_000], [f, 5_000]] as const) {
      expect(res.r.success).toBe(false)
      expect(res.r.error?.category, JSON.stringify(res.r)).toBe('timeout')
      expect(res.r.attempts).toHaveLength(1)
      expect(res.r.attempts[0]?.timeoutMs).toBe(expected)
      expect(Math.abs(res.ms - expected), `took ${res.ms} ms`).toBeLessThanOrEqual(500)
    }
    for (const n of [def, five]) {
      const conns = (await n.call('inspect', {})).connections
      expect(conns.filter(c => c.peerId === holeId && c.status === 'open')).toEqual([])
    }
  })

  it('a closed TCP port is refused in under a second', async () => {
    const addr = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()}`
    const a = await start({ name: 'refused', role: 'peer', transport: 'tcp', identitySeed: seed('refused'), bootstrapAddrs: [addr], autoMonitor: false })
    const t0 = Date.now()
    const r = await a.call('connectWithTimeout', {})
    const ms = Date.now() - t0
    expect(r.success).toBe(false)
    expect(r.error?.category, JSON.stringify(r)).toBe('refused')
    expect(ms).toBeLessThan(1000)
  })
})
