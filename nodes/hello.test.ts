import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { LocalNode } from './node.ts'
import { askHello } from './hello.ts'
import { stockMemoryNode } from './test-support.ts'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

async function until (what: string, ok: () => Promise<boolean>, deadlineMs = 5_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!await ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('the bootstrap\'s hello: who else is online', () => {
  it('counts the connected DHT peers other than the asker, not peers without the DHT protocol, and forgets one that left', async () => {
    const boot = await LocalNode.start({ name: 'hello-boot', role: 'bootstrap', transport: 'memory', identitySeed: `hello-boot-${process.pid}-${Date.now()}`, autoMonitor: false })
    stops.push(async () => { await boot.stop() })
    const dhtPeer = async (name: string): Promise<Awaited<ReturnType<typeof stockMemoryNode>>> => {
      const node = await stockMemoryNode(name, { identify: identify(), ping: ping(), dht: kadDHT({ protocol: '/chiral/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper }) })
      stops.push(async () => { await node.stop() })
      return node
    }
    const a = await dhtPeer('hello-a')
    const b = await dhtPeer('hello-b')
    const plain = await stockMemoryNode('hello-plain', { identify: identify() })
    stops.push(async () => { await plain.stop() })
    const to = multiaddr(boot.multiaddrs()[0]!)
    const ask = async (from: typeof plain | typeof a): Promise<number | undefined> =>
      (await askHello(await from.dial(to), AbortSignal.timeout(5_000)))?.others
    await a.dial(to)
    await b.dial(to)
    // The asker is not an "other"; a peer that does not announce the DHT protocol is not counted.
    await until('a and b counted', async () => await ask(plain) === 2)
    expect(await ask(a)).toBe(1)
    await b.stop()
    await until('b gone', async () => await ask(plain) === 1)
    expect(await ask(a)).toBe(0)
  })
})
