import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { connectionMonitorOf } from './libp2p.ts'
import { NodeConfigSchema } from './config.ts'
import { LocalNode } from './node.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

describe('pinging a spec-conforming node', () => {
  it('many concurrent health checks of a stock js-libp2p node all succeed (it refuses a third concurrent ping stream)', async () => {
    // libp2p's defaults: ping accepts 2 inbound streams per connection, as the ping spec recommends.
    const stock = await createLibp2p({
      addresses: { listen: [`/memory/stock-ping-${process.pid}`] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
      services: { identify: identify(), ping: ping() }
    })
    stops.push(async () => { await stock.stop() })
    const address = stock.getMultiaddrs()[0]!.toString()
    const peer = await LocalNode.start({ name: 'pinger', role: 'peer', transport: 'memory', identitySeed: 'ping-test', bootstrapAddrs: [address], autoMonitor: false })
    stops.push(async () => { await peer.stop() })
    expect((await peer.call('connectWithTimeout', {})).success).toBe(true)
    const checks = await Promise.all(Array.from({ length: 8 }, async () => await peer.call('checkBootstrapHealth', {})))
    expect(checks.map(c => c.errorMessage)).toEqual(Array(8).fill(null))
    expect(checks.every(c => c.isReachable && c.latencyMs != null)).toBe(true)
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
