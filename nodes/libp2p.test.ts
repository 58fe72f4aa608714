import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeConfigSchema, type Transport } from './config.ts'
import { createChiralLibp2p } from './libp2p.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

/** Two started nodes on a transport, the first connected to the second; the yamux muxer of that connection. */
async function connected (transport: Transport): Promise<{ rtt: () => number }> {
  const start = async (name: string): Promise<Awaited<ReturnType<typeof createChiralLibp2p>>> => {
    const node = await createChiralLibp2p(NodeConfigSchema.parse({ name, role: 'peer', transport, identitySeed: `${name}-${process.pid}-${Date.now()}` }))
    await node.start()
    stops.push(async () => { await node.stop() })
    return node
  }
  const a = await start(`ka-${transport}-a`)
  const b = await start(`ka-${transport}-b`)
  const conn = await a.dial(multiaddr(b.getMultiaddrs()[0]!))
  // yamux keeps the RTT of its last answered keep-alive ping (-1: none), and pings once at once when keep-alive is on.
  const muxer = (conn as unknown as { muxer: { rtt: number } }).muxer
  return { rtt: () => muxer.rtt }
}

describe('yamux keep-alive pings', () => {
  it('are off on the memory transport (nothing reads them, N nodes pay them on one thread) and on for TCP', async () => {
    const memory = await connected('memory')
    const tcp = await connected('tcp')
    const end = Date.now() + 5_000
    while (tcp.rtt() < 0 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
    expect(tcp.rtt()).toBeGreaterThanOrEqual(0)
    expect(memory.rtt()).toBe(-1)
  })
})
