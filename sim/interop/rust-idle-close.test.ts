import { afterEach, describe, expect, it, vi } from 'vitest'
import { referenceBinaryMissing, referenceBinaryPath } from './binaries.ts'
import { LocalNode } from '../../nodes/node.ts'
import { startListening } from '../../nodes/test-support.ts'

/**
 * A loaded client against a rust-libp2p 0.54 bootstrap that closes idle connections right after identify (its
 * default idle timeout 0) and admits peers by agent version. Here dial() resolves 150 ms after the connection
 * opened, as on CI with the whole suite on 2 cores: by then the bootstrap's identify is over and, with no stream of
 * ours on the connection, it has closed it as idle (and it may close a connection at its very start, before any
 * stream). The admission check must still tell an admitted agent (connected) from a refused one (rejected), and
 * a health check must find the bootstrap up (the plan's Test 4 returning to green after a restart).
 */
vi.mock('../../nodes/libp2p.ts', async (importOriginal) => {
  const { adjustedLibp2p } = await import('../../nodes/test-support.ts')
  return await adjustedLibp2p(importOriginal, libp2p => {
    const dial = libp2p.dial.bind(libp2p)
    libp2p.dial = (async (...dialArgs: Parameters<typeof dial>) => {
      const connection = await dial(...dialArgs)
      await new Promise(resolve => setTimeout(resolve, LOADED_CLIENT_MS))
      return connection
    }) as typeof libp2p.dial
  })
})

const LOADED_CLIENT_MS = 150
const missing = referenceBinaryMissing('rust')
const gate = missing != null && process.env.CI !== 'true'

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

async function startRust (): Promise<string> {
  const rust = await startListening(referenceBinaryPath('rust'), ['--port', '0', '--kad-mode', 'server', '--dht-protocol', '/chiral/kad/1.0.0', '--admit-agent-prefix', 'chiral-admitted/', '--exit-on-stdin-close'])
  stops.push(async () => { rust.kill() })
  return rust.address
}

async function connectAs (agentVersion: string, address: string, n: number): Promise<LocalNode> {
  const node = await LocalNode.start({ name: `loaded-${n}`, role: 'peer', transport: 'tcp', identitySeed: `loaded-${agentVersion}-${n}`, agentVersion, bootstrapAddrs: [address], autoMonitor: false })
  stops.push(async () => { await node.stop() })
  return node
}

describe.skipIf(gate)(`a loaded client and an idle-closing, agent-admitting rust-libp2p bootstrap${gate ? ` — skipped: ${missing}` : ''}`, () => {
  it('connects an admitted agent and rejects another', async () => {
    expect(missing).toBeUndefined()
    const address = await startRust()
    for (let n = 0; n < 3; n++) {
      const admitted = await connectAs('chiral-admitted/1.0.0', address, n)
      const result = await admitted.call('connectWithTimeout', {})
      expect({ success: result.success, error: result.error?.message }).toEqual({ success: true, error: undefined })
    }
    const refused = await connectAs('some-client/0.1.0', address, 9)
    const result = await refused.call('connectWithTimeout', {})
    expect(result.error?.category).toBe('rejected')
    expect(result.error?.detail).toMatch(/agent rejected\?/)
  }, 60_000)

  it('is healthy to health checks that each need a new connection', async () => {
    expect(missing).toBeUndefined()
    const address = await startRust()
    const node = await connectAs('chiral-admitted/1.0.0', address, 20)
    for (let n = 0; n < 5; n++) {
      // The bootstrap closes the connection once a check's streams end: each check dials anew, as after a restart.
      const health = await node.call('checkBootstrapHealth', {})
      expect({ isReachable: health.isReachable, errorMessage: health.errorMessage }).toEqual({ isReachable: true, errorMessage: null })
    }
  }, 60_000)
})

