import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeConfigSchema } from './config.ts'
import { createChiralLibp2p } from './libp2p.ts'
import { LocalNode } from './node.ts'

/**
 * Facts about js kad-dht that chiral-sim's verdicts rest on (sim/diagnosis.ts's join-order explanation). When an
 * upgrade changes one, this fails and the text that relies on it must change with it.
 */
const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

describe('js kad-dht 16, as the diagnosis describes it', () => {
  it('never refreshes its routing table by itself: only an explicit refreshRoutingTable() walks it', async () => {
    const boot = await LocalNode.start({ name: 'facts-boot', role: 'bootstrap', identitySeed: `facts-boot-${process.pid}-${Date.now()}`, autoMonitor: false })
    stops.push(async () => { await boot.stop() })
    const libp2p = await createChiralLibp2p(NodeConfigSchema.parse({ name: 'facts', role: 'peer', identitySeed: `facts-${process.pid}-${Date.now()}` }))
    type Refresh = { refreshTable: (force?: boolean) => void }
    const refresh = (libp2p.services.dht as unknown as { routingTableRefresh: Refresh }).routingTableRefresh
    let walks = 0
    const original = refresh.refreshTable
    // The instance's own property is what its afterStart and its timer call, so this sees every refresh.
    refresh.refreshTable = (force?: boolean) => { walks++; original(force) }
    await libp2p.start()
    stops.push(async () => { await libp2p.stop() })
    await libp2p.dial(multiaddr(boot.multiaddrs()[0]!))
    // RoutingTableRefresh.afterStart() would refresh at once; libp2p's start() skips an object without start().
    await new Promise(resolve => setTimeout(resolve, 1_500))
    expect(walks).toBe(0)
    await libp2p.services.dht.refreshRoutingTable()
    expect(walks).toBe(1)
  })
})
