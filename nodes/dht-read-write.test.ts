import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { afterEach, describe, expect, it } from 'vitest'
import { stockMemoryNode } from './test-support.ts'
import { LocalNode } from './node.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

const FAST = { timeScale: 0.1 } as const

async function until (what: string, ok: () => Promise<boolean>, deadlineMs = 5_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!await ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function chiral (name: string, role: 'bootstrap' | 'peer', bootstrapAddrs: string[] = []): Promise<LocalNode> {
  const node = await LocalNode.start({ name, role, transport: 'memory', identitySeed: `${name}-${process.pid}-${Date.now()}`, bootstrapAddrs, autoMonitor: false, timing: FAST })
  stops.push(async () => { await node.stop() })
  return node
}

/**
 * The plan's DHT read/write test (Step 4) must read the record back from the DHT. kad-dht's put stores the record in
 * the node's own datastore before it sends it anywhere, and its get yields that local copy first: a read-back that
 * takes the first value reads its own write and says "verified" with nobody else holding the record.
 */
describe('testPeerDiscovery: the read-back comes from another peer', () => {
  it('fails when every routing-table peer is gone, though the node holds its own copy', async () => {
    const boot = await chiral('rw-boot', 'bootstrap')
    const peer = await chiral('rw-peer', 'peer', boot.multiaddrs())
    expect((await peer.call('connectWithTimeout', {})).success).toBe(true)
    await until('the bootstrap in the routing table', async () => (await peer.call('getDhtRoutingTableSize', {})).size > 0)
    expect((await peer.call('testPeerDiscovery', { testContent: 'rw-ok' })).success).toBe(true)

    await boot.stop()
    // The routing table still lists the bootstrap: the node has a peer to store on, and none that answers.
    expect((await peer.call('getDhtRoutingTableSize', {})).size).toBeGreaterThan(0)
    const r = await peer.call('testPeerDiscovery', { testContent: 'rw-gone' })
    expect(r.success).toBe(false)
    expect(r.error).toMatch(/not read back from any other peer.*stored on 0 peers/)
  })

  it('reads back a provider record from a stock kad-dht node that refuses the value record', async () => {
    // A stock js-libp2p DHT validates PUT_VALUE against its validators (pk, ipns): our test record is refused, as by
    // go-libp2p-kad-dht. ADD_PROVIDER is stored by every Kademlia node, so the write is still testable there.
    const stock = await stockMemoryNode('rw-stock', { identify: identify(), ping: ping(), dht: kadDHT({ protocol: '/chiral/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper }) })
    stops.push(async () => { await stock.stop() })
    const peer = await chiral('rw-peer-stock', 'peer', [stock.getMultiaddrs()[0]!.toString()])
    expect((await peer.call('connectWithTimeout', {})).success).toBe(true)
    await until('the stock node in the routing table', async () => (await peer.call('getDhtRoutingTableSize', {})).size > 0)
    const r = await peer.call('testPeerDiscovery', { testContent: 'rw-stock' })
    expect(r).toMatchObject({ success: true })
  })
})
