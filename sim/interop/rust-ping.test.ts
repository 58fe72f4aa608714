import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { referenceBinaryMissing, referenceBinaryPath } from './binaries.ts'

/**
 * A fact about rust-libp2p 0.54 (libp2p-ping 0.45) that the client must live with, shown against the real node:
 * its ping handler serves ONE inbound ping stream per connection, and a second one replaces the first, whose
 * pending ping is never answered. js-libp2p's kad-dht pings a new DHT peer before admitting it to the routing
 * table and does not retry; when a chiral-sim peer's own health ping to the bootstrap opens right after it, the
 * admission ping is the one dropped and the bootstrap never enters the peer's routing table (issue 9's
 * "newcomer after a restart never adds the bootstrap", seen here in 1 of ~10 loaded runs).
 * (The node under test serves ping itself: rust's handler stops answering inbound pings on a connection once its
 * own outbound ping found the protocol unsupported.)
 */
const missing = referenceBinaryMissing('rust')
const gate = missing != null && process.env.CI !== 'true'
const PING = '/ipfs/ping/1.0.0'

let child: ChildProcess | undefined
afterEach(() => { child?.kill('SIGKILL'); child = undefined })

async function startRust (): Promise<string> {
  child = spawn(referenceBinaryPath('rust'), ['--port', '0', '--idle-timeout', '10', '--exit-on-stdin-close'], { stdio: ['pipe', 'pipe', 'pipe'] })
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('no ready line in 10 s')) }, 10_000)
    child!.stdout!.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString())
      if (m != null) { clearTimeout(timer); resolve(m[1]!) }
    })
  })
}

describe.skipIf(gate)(`rust-libp2p's ping handler (the rust reference node)${gate ? ` — skipped: ${missing}` : ''}`, () => {
  it('answers a ping on one stream, and drops the pending ping of a stream a second one replaced', async () => {
    expect(missing).toBeUndefined()
    const addr = multiaddr(await startRust())
    const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()], services: { identify: identify(), ping: ping() } })
    try {
      const conn = await node.dial(addr, { signal: AbortSignal.timeout(5_000) })
      const echo = async (s: ReturnType<typeof byteStream>, payload: Uint8Array): Promise<string> => {
        try {
          await s.write(payload, { signal: AbortSignal.timeout(3_000) })
          const got = await s.read({ signal: AbortSignal.timeout(3_000) })
          if (got == null) return 'not answered (closed)'
          return Buffer.from(got.subarray()).equals(Buffer.from(payload)) ? 'answered' : 'garbled'
        } catch (err) {
          return `not answered (${(err as Error).name})`
        }
      }
      // Alone, a ping stream is answered.
      const solo = byteStream(await conn.newStream(PING, { signal: AbortSignal.timeout(3_000) }))
      expect(await echo(solo, randomBytes(32))).toBe('answered')
      // Two streams opened before either pings, as kad-dht's admission ping and a health ping do.
      const first = byteStream(await conn.newStream(PING, { signal: AbortSignal.timeout(3_000) }))
      const second = byteStream(await conn.newStream(PING, { signal: AbortSignal.timeout(3_000) }))
      // Let the node negotiate both before the first ping is sent.
      await new Promise(resolve => setTimeout(resolve, 200))
      const [a, b] = await Promise.all([echo(first, randomBytes(32)), echo(second, randomBytes(32))])
      expect(b).toBe('answered')
      expect(a).toMatch(/^not answered/)
    } finally {
      await node.stop()
    }
  }, 30_000)
})
