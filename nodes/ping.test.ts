import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { afterEach, describe, expect, it } from 'vitest'
import { stockMemoryNode } from './test-support.ts'
import { connectionMonitorOf } from './libp2p.ts'
import { NodeConfigSchema } from './config.ts'
import { LocalNode } from './node.ts'
import type { NodeContext } from './context.ts'
import { checkBootstrapHealth } from './health/check.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

describe('pinging a spec-conforming node', () => {
  it('many concurrent health checks of a stock js-libp2p node all succeed (it refuses a third concurrent ping stream)', async () => {
    // libp2p's defaults: ping accepts 2 inbound streams per connection, as the ping spec recommends.
    const stock = await stockMemoryNode('stock-ping', { identify: identify(), ping: ping() })
    stops.push(async () => { await stock.stop() })
    const address = stock.getMultiaddrs()[0]!.toString()
    const peer = await LocalNode.start({ name: 'pinger', role: 'peer', transport: 'memory', identitySeed: 'ping-test', bootstrapAddrs: [address], autoMonitor: false })
    stops.push(async () => { await peer.stop() })
    // It serves no DHT, so it is no bootstrap ("protocol"); its health is a ping all the same.
    expect((await peer.call('connectWithTimeout', {})).error?.category).toBe('protocol')
    const checks = await Promise.all(Array.from({ length: 8 }, async () => await peer.call('checkBootstrapHealth', {})))
    expect(checks.map(c => c.errorMessage)).toEqual(Array(8).fill(null))
    expect(checks.every(c => c.isReachable && c.latencyMs != null)).toBe(true)
  })
})

describe('pinging a bootstrap that closes connections under the ping (idle timeout 0)', () => {
  /**
   * What js-libp2p's ping throws when the connection goes away with the ping in flight, as a bootstrap that closes
   * idle connections right after identify does (rust-libp2p ≤ 0.54; its ping streams do not keep a connection
   * alive): the stream's "close" event itself, or an UnexpectedEOFError. A stub node, so the order is certain.
   */
  const closeEvent = (): Event => new Event('close')
  const eof = (): Error => Object.assign(new Error('Unexpected EOF - stream closed after reading 0/32 bytes'), { name: 'UnexpectedEOFError' })
  function stubContext (failures: Array<() => unknown>, dialFailures: Array<() => unknown> = []): { ctx: NodeContext, pings: () => number, hangUps: () => number } {
    let pings = 0
    let hangUps = 0
    let dials = 0
    const libp2p = {
      services: { ping: { ping: async () => { const fail = failures[pings++]; if (fail != null) throw fail(); return 3 } } },
      hangUp: async () => { hangUps++ },
      dial: async () => {
        const fail = dialFailures[dials++]
        if (fail != null) throw fail()
        return { newStream: async () => { throw new Error('no streams in this stub') } }
      },
      getConnections: () => [],
      addEventListener: () => {},
      removeEventListener: () => {}
    }
    const ctx = { config: { dht: { protocol: '/chiral/kad/1.0.0' } }, timing: { healthPingTimeoutMs: 1_000 }, libp2p, stopSignal: new AbortController().signal, bootstrapLatency: new Map(), discovered: new Map() } as unknown as NodeContext
    return { ctx, pings: () => pings, hangUps: () => hangUps }
  }
  const BOOT = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWCNVcVhbwZJh8gKJKqb8y8PxWHTHMGWcSopezMJsLhfQC'

  it('is healthy when it answers a ping on a fresh connection', async () => {
    for (const failure of [closeEvent, eof]) {
      const stub = stubContext([failure])
      const health = await checkBootstrapHealth(stub.ctx, BOOT)
      expect({ isReachable: health.isReachable, errorMessage: health.errorMessage, latencyMs: health.latencyMs }).toEqual({ isReachable: true, errorMessage: null, latencyMs: 3 })
      // The second ping went over a new connection: the one the bootstrap closed was hung up first.
      expect({ pings: stub.pings(), hangUps: stub.hangUps() }).toEqual({ pings: 2, hangUps: 1 })
    }
  })

  it('is healthy when four fresh connections in a row were closed at their start (rust-libp2p idle 0 does so ~1 in 6)', async () => {
    const stub = stubContext([closeEvent, eof, closeEvent, eof])
    const health = await checkBootstrapHealth(stub.ctx, BOOT)
    expect({ isReachable: health.isReachable, errorMessage: health.errorMessage }).toEqual({ isReachable: true, errorMessage: null })
    expect(stub.pings()).toBe(5)
  })

  it('reports a bootstrap that went away as such: a fresh dial refused is not one more closed connection', async () => {
    // Test 4 against an idle-closing rust bootstrap: the stopped bootstrap read "closed the connection before
    // answering a ping ... (it closes connections right after identify?)", with ECONNREFUSED only as its cause.
    const refused = (): Error => Object.assign(new Error('connection error 127.0.0.1:4001: connect ECONNREFUSED 127.0.0.1:4001'), { code: 'ECONNREFUSED' })
    const stub = stubContext([closeEvent], [refused])
    const health = await checkBootstrapHealth(stub.ctx, BOOT)
    expect(health.isReachable).toBe(false)
    expect(health.errorMessage).not.toMatch(/ConnectionLostError|right after identify/)
    expect(health.errorMessage).toMatch(/ECONNREFUSED/)
    expect(stub.pings()).toBe(1)
  })

  it('says what happened when every fresh connection is closed before the answer, never "[object Event]"', async () => {
    const stub = stubContext([closeEvent, closeEvent, closeEvent, closeEvent, closeEvent])
    const health = await checkBootstrapHealth(stub.ctx, BOOT)
    expect(health.isReachable).toBe(false)
    expect(health.errorMessage).toMatch(/^ConnectionLostError: the remote closed the connection before answering a ping, on 5 fresh connections in a row \(it closes connections right after identify\?\) \(cause: Event: a "close" event without an error\)$/)
    expect(stub.pings()).toBe(5)
  })
})

describe('pinging a bootstrap that drops a ping stream without answering', () => {
  /**
   * rust-libp2p 0.54's ping handler serves one inbound ping stream per connection: a second one replaces the first,
   * whose pending ping is never answered (sim/interop/rust-ping.test.ts shows it on the real node). When kad-dht's
   * admission ping and our health ping meet on one connection, ours can be the dropped one: the check stalled for
   * its whole 5 s and the monitor counted a healthy bootstrap as unreachable. Here a stub drops the first ping
   * stream of every connection, so the order is certain.
   */
  it('is healthy, with the latency of the ping that was answered, well within the deadline', async () => {
    const boot = await stockMemoryNode('drop-ping', { identify: identify() })
    stops.push(async () => { await boot.stop() })
    const dropped = new WeakSet<object>()
    let pingStreams = 0
    await boot.handle('/ipfs/ping/1.0.0', async (stream, connection) => {
      pingStreams++
      if (!dropped.has(connection)) {
        dropped.add(connection)
        // Read and never answer, as a replaced stream is left.
        for await (const _ of stream) { /* swallowed */ }
        return
      }
      for await (const buf of stream) stream.send(buf)
      await stream.close().catch(() => {})
    }, { maxInboundStreams: 8 })
    const address = boot.getMultiaddrs()[0]!.toString()
    const peer = await LocalNode.start({ name: 'hedger', role: 'peer', transport: 'memory', identitySeed: 'drop-ping-test', bootstrapAddrs: [address], autoMonitor: false })
    stops.push(async () => { await peer.stop() })
    const started = Date.now()
    const health = await peer.call('checkBootstrapHealth', {})
    const took = Date.now() - started
    expect({ isReachable: health.isReachable, errorMessage: health.errorMessage }).toEqual({ isReachable: true, errorMessage: null })
    expect(pingStreams).toBe(2)
    // One hedge interval and a memory-transport round trip; far from the 5 s deadline even on a loaded machine.
    expect(took).toBeLessThan(4_000)
    expect(health.latencyMs).toBeLessThan(took)
  })
})

describe('the connection monitor', () => {
  const of = (input: Record<string, unknown>): ReturnType<typeof connectionMonitorOf> =>
    connectionMonitorOf(NodeConfigSchema.parse({ name: 'm', role: 'peer', identitySeed: 'monitor-test', ...input }))

  it('runs on TCP every 10 s and not on memory by default, and follows the setting when given', () => {
    expect(of({ transport: 'tcp' })).toEqual({ enabled: true, pingInterval: 10_000, protocolPrefix: 'ipfs' })
    expect(of({ transport: 'memory' })).toMatchObject({ enabled: false })
    expect(of({ transport: 'memory', connectionMonitorIntervalMs: 5_000 })).toMatchObject({ enabled: true, pingInterval: 5_000 })
    expect(of({ transport: 'tcp', connectionMonitorIntervalMs: null })).toMatchObject({ enabled: false })
    // It pings over the node's own ping protocol, so a node on another prefix is not cut off by its own monitor.
    expect(of({ transport: 'tcp', dht: { pingProtocolPrefix: 'chiral' } })).toMatchObject({ protocolPrefix: 'chiral' })
  })
})
