import net from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { startBlackhole } from './blackhole.ts'
import type { Blackhole } from './blackhole.ts'
import { categorizeBootstrapError } from '../../nodes/errors.ts'

const transports = ['memory', 'tcp'] as const
type Kind = typeof transports[number]

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).reverse().map(async fn => await fn()))
})

async function blackhole (transport: Kind): Promise<Blackhole> {
  const hole = await startBlackhole({ transport, name: `blackhole-test-${crypto.randomUUID()}` })
  cleanups.push(async () => { await hole.close() })
  return hole
}

async function dialer (transport: Kind): Promise<Libp2p> {
  const node = await createLibp2p({
    addresses: { listen: [transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : `/memory/blackhole-dialer-${crypto.randomUUID()}`] },
    transports: [transport === 'tcp' ? tcp() : memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Long enough that only the test's own signal decides when a dial gives up.
    connectionManager: { dialTimeout: 30_000, addressDialTimeout: 30_000 }
  })
  cleanups.push(async () => { await node.stop() })
  return node
}

async function failedDial (node: Libp2p, addr: string, signal: AbortSignal): Promise<{ error: unknown, elapsedMs: number }> {
  const started = performance.now()
  try {
    await node.dial(multiaddr(addr), { signal })
  } catch (error) {
    return { error, elapsedMs: performance.now() - started }
  }
  throw new Error(`dial to ${addr} unexpectedly succeeded`)
}

describe.each(transports)('startBlackhole (%s)', (transport) => {
  it('looks like a real bootstrap address', async () => {
    const hole = await blackhole(transport)
    const ma = multiaddr(hole.multiaddr)
    const peerId = ma.getComponents().find(c => c.name === 'p2p')?.value ?? ''
    expect(peerIdFromString(peerId).type).toBe('Ed25519')
    expect(hole.multiaddr).toMatch(transport === 'tcp' ? /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/ : /^\/memory\/blackhole-test-[^/]+\/p2p\/12D3KooW/)
  })

  it('holds a dial until the caller deadline, not earlier, and that is a timeout', async () => {
    const hole = await blackhole(transport)
    const node = await dialer(transport)
    const signal = AbortSignal.timeout(1_500)
    const { error, elapsedMs } = await failedDial(node, hole.multiaddr, signal)
    // Timers never fire early, but performance.now() and the timer clock round differently: allow a few ms.
    expect(elapsedMs).toBeGreaterThanOrEqual(1_490)
    expect(elapsedMs).toBeLessThan(3_000)
    expect(categorizeBootstrapError(error, { timedOut: signal.aborted, timeoutMs: 1_500 })).toMatchObject({
      category: 'timeout', message: 'Bootstrap not responding - may be down'
    })
  })

  it('ends a pending dial promptly when closed, and refuses afterwards', async () => {
    const hole = await blackhole(transport)
    const node = await dialer(transport)
    const pending = failedDial(node, hole.multiaddr, AbortSignal.timeout(10_000))
    await new Promise(resolve => setTimeout(resolve, 300))
    const closedAt = performance.now()
    await hole.close()
    const { error } = await pending
    expect(performance.now() - closedAt).toBeLessThan(1_000)
    // The dialer saw the remote drop the connection mid-handshake, which is a refusal, not a timeout.
    expect(categorizeBootstrapError(error).category).toBe('refused')

    const after = await failedDial(node, hole.multiaddr, AbortSignal.timeout(5_000))
    expect(after.elapsedMs).toBeLessThan(1_000)
    expect(categorizeBootstrapError(after.error).category).toBe('refused')
  })

  it('close is idempotent and is the async disposer', async () => {
    const hole = await startBlackhole({ transport, name: `blackhole-dispose-${crypto.randomUUID()}` })
    {
      await using held = hole
      expect(held.multiaddr).toBe(hole.multiaddr)
    }
    await hole.close()
    await hole[Symbol.asyncDispose]()
    const node = await dialer(transport)
    const { error } = await failedDial(node, hole.multiaddr, AbortSignal.timeout(5_000))
    expect(categorizeBootstrapError(error).category).toBe('refused')
  })
})

describe('startBlackhole edges', () => {
  it('accepts and holds raw sockets, then destroys them all on close', async () => {
    const hole = await blackhole('tcp')
    const port = Number(multiaddr(hole.multiaddr).getComponents().find(c => c.name === 'tcp')?.value)
    const sockets = await Promise.all([1, 2, 3].map(async () => await new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => { resolve(socket) })
      socket.once('error', reject)
    })))
    cleanups.push(async () => { for (const s of sockets) s.destroy() })
    const closed = sockets.map(async s => await new Promise<void>(resolve => { s.once('close', () => { resolve() }) }))
    // Nothing is ever written back: a held socket stays silent.
    let received = 0
    for (const s of sockets) {
      s.on('data', chunk => { received += chunk.length })
      s.on('error', () => {})
      s.write('/multistream/1.0.0\n')
    }
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(received).toBe(0)
    expect(sockets.every(s => !s.destroyed)).toBe(true)

    const closedAt = performance.now()
    await hole.close()
    await Promise.race([Promise.all(closed), new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('sockets not closed within 2 s')) }, 2_000).unref())])
    expect(performance.now() - closedAt).toBeLessThan(1_000)
  })

  it('a closed TCP port is refused in well under a second', async () => {
    const hole = await blackhole('tcp')
    await hole.close()
    const node = await dialer('tcp')
    const { error, elapsedMs } = await failedDial(node, hole.multiaddr, AbortSignal.timeout(5_000))
    expect(elapsedMs).toBeLessThan(1_000)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'refused', detail: expect.stringMatching(/ECONNREFUSED/) })
  })

  it('a memory address nobody listens on is refused', async () => {
    const node = await dialer('memory')
    const hole = await blackhole('memory')
    const nobody = hole.multiaddr.replace(/^\/memory\/[^/]+/, `/memory/nobody-${crypto.randomUUID()}`)
    const { error, elapsedMs } = await failedDial(node, nobody, AbortSignal.timeout(5_000))
    expect(elapsedMs).toBeLessThan(1_000)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'refused', detail: expect.stringMatching(/No memory listener found/) })
  })

  it('rejects a memory name that is already taken', async () => {
    const hole = await blackhole('memory')
    const name = multiaddr(hole.multiaddr).getComponents()[0]?.value ?? ''
    await expect(startBlackhole({ transport: 'memory', name })).rejects.toThrow(/already in use/)
  })
})
