import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { afterEach, describe, expect, it } from 'vitest'
import { stockMemoryNode } from './test-support.ts'
import { LocalNode } from './node.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

/**
 * The newcomer whose DHT never adds the bootstrap (issue 9): kad-dht admits a new contact after one ping and
 * never tries again. A bootstrap whose ping is unavailable at that moment (here: switched off; in the wild, a
 * spec-conforming node refusing a third concurrent ping stream) stayed out of the routing table for good, so no
 * walk ran and the newcomer was reported only as "missing".
 */
describe('a bootstrap whose admission ping failed once', () => {
  it('is admitted again once libp2p\'s own admission had its time, with a warning saying so', async () => {
    const boot = await stockMemoryNode('admission-boot', { identify: identify(), ping: ping(), dht: kadDHT({ protocol: '/chiral/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper }) })
    stops.push(async () => { await boot.stop() })
    // The ping service is a Startable; its public type does not say so.
    const pingService = boot.services.ping as unknown as { start: () => Promise<void>, stop: () => Promise<void> }
    // No ping while the newcomer joins: its DHT's one admission ping of the bootstrap fails.
    await pingService.stop()
    const address = `${boot.getMultiaddrs()[0]!.toString()}`
    const peer = await LocalNode.start({ name: 'newcomer', role: 'peer', transport: 'memory', identitySeed: 'admission-test', bootstrapAddrs: [address], autoMonitor: false, timing: { timeScale: 0.1, discoveryVerificationDelayMs: 1_000 } })
    stops.push(async () => { await peer.stop() })
    expect((await peer.call('connectWithTimeout', {})).success).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect((await peer.call('inspect', {})).routingTable).toEqual([])
    await pingService.start()
    const deadline = Date.now() + 5_000
    let table: string[] = []
    while (Date.now() < deadline && table.length === 0) {
      await new Promise(resolve => setTimeout(resolve, 100))
      table = (await peer.call('inspect', {})).routingTable
    }
    expect(table).toEqual([boot.peerId.toString()])
    const warnings = peer.log.since(0).filter(e => e.type === 'log' && e.level === 'warn').map(e => 'message' in e ? e.message : '')
    expect(warnings).toContainEqual(expect.stringMatching(/kad-dht did not admit the bootstrap 12D3\w+ to its routing table within 1000 ms of connecting \(its one admission ping failed\?\): admitting it again/))
  })
})
