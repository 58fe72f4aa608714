import path from 'node:path'
import { ConnectionClosedError, type Connection } from '@libp2p/interface'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BUILTIN_DIR } from './load.ts'
import { LocalNode } from '../nodes/node.ts'
import { startListening } from '../nodes/test-support.ts'

/**
 * A loaded client's dial() resolves late: by then a bootstrap that admits by agent version has had our identify
 * answer and closed the connection, and js-libp2p's dial throws "Remote closed connection during opening" (CI: a
 * refused agent read as `refused`, "Bootstrap server not available", against the go bootstrap). The handshake was
 * made and the bootstrap closed it: that is its decision about us, not a refusal of the connection.
 */
const RESOLVE_LATE_MS = 1_500

vi.mock('../nodes/libp2p.ts', async (importOriginal) => {
  const { adjustedLibp2p } = await import('../nodes/test-support.ts')
  return await adjustedLibp2p(importOriginal, libp2p => {
    const dial = libp2p.dial.bind(libp2p)
    libp2p.dial = (async (...args: Parameters<typeof dial>) => {
      const connection: Connection = await dial(...args)
      // What js-libp2p's connection manager does once its dial queue hands over the connection.
      await new Promise(resolve => {
        const timer = setTimeout(resolve, RESOLVE_LATE_MS)
        connection.addEventListener('close', () => { clearTimeout(timer); resolve(undefined) }, { once: true })
      })
      if (connection.status !== 'open') throw new ConnectionClosedError('Remote closed connection during opening')
      return connection
    }) as typeof libp2p.dial
  })
})

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

describe('a dial that resolves after the bootstrap closed the connection', () => {
  it('is "rejected" when every connection is closed that way, and connected when the agent is admitted', async () => {
    const demo = await startListening(process.execPath, [path.join(BUILTIN_DIR, 'external', 'js-libp2p-bootstrap.mjs'), '--port', '0', '--protocol', '/chiral/kad/1.0.0', '--admit-agent', '^chiral-admitted/'])
    stops.push(async () => { demo.kill() })
    const refused = await LocalNode.start({ name: 'opening-refused', role: 'peer', transport: 'tcp', identitySeed: 'opening-refused', agentVersion: 'some-client/0.1.0', bootstrapAddrs: [demo.address], autoMonitor: false })
    stops.push(async () => { await refused.stop() })
    const no = await refused.call('connectWithTimeout', { timeoutMs: 15_000 })
    expect({ success: no.success, category: no.error?.category }, JSON.stringify(no.error)).toEqual({ success: false, category: 'rejected' })
    expect(no.error?.detail).toMatch(/closed the connection .*on each of 5 connections/)
    const admitted = await LocalNode.start({ name: 'opening-admitted', role: 'peer', transport: 'tcp', identitySeed: 'opening-admitted', agentVersion: 'chiral-admitted/1.0.0', bootstrapAddrs: [demo.address], autoMonitor: false })
    stops.push(async () => { await admitted.stop() })
    const yes = await admitted.call('connectWithTimeout', { timeoutMs: 15_000 })
    expect({ success: yes.success, error: yes.error?.detail }).toEqual({ success: true, error: undefined })
  }, 60_000)
})
