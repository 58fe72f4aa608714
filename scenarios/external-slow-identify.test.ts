import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BUILTIN_DIR } from './load.ts'
import { LocalNode } from '../nodes/node.ts'
import { startListening } from '../nodes/test-support.ts'

/**
 * A loaded client answers the bootstrap's identify request late: here 600 ms after it had the bootstrap's own
 * answer, as a CI runner under the whole suite did. A bootstrap that admits peers by agent version decides only
 * once it has our answer, so its close comes long after "identify" from our side: the admission check must wait for
 * that decision, not declare a refused agent connected (CI: "A connect fails: expected false, got success").
 */
const LATE_ANSWER_MS = 600

vi.mock('../nodes/libp2p.ts', async (importOriginal) => {
  const { adjustedLibp2p } = await import('../nodes/test-support.ts')
  return await adjustedLibp2p(importOriginal, libp2p => {
    const service = (libp2p.services as unknown as { identify: { handleProtocol: (...a: unknown[]) => Promise<void> } }).identify
    const handle = service.handleProtocol
    service.handleProtocol = async (...a: unknown[]) => {
      await new Promise(resolve => setTimeout(resolve, LATE_ANSWER_MS))
      await handle.apply(service, a)
    }
  })
})

const stops: Array<() => Promise<void>> = []
afterEach(async () => { for (const stop of stops.splice(0).reverse()) await stop() })

async function startDemo (args: string[]): Promise<string> {
  const demo = await startListening(process.execPath, [path.join(BUILTIN_DIR, 'external', 'js-libp2p-bootstrap.mjs'), '--port', '0', '--protocol', '/chiral/kad/1.0.0', ...args])
  stops.push(async () => { demo.kill() })
  return demo.address
}

describe('a client that answers identify late, and a bootstrap that admits by agent version', () => {
  it('is "rejected" when its agent is refused, and connected when it is admitted', async () => {
    const address = await startDemo(['--admit-agent', '^chiral-admitted/'])
    const refused = await LocalNode.start({ name: 'late-refused', role: 'peer', transport: 'tcp', identitySeed: 'late-refused', agentVersion: 'some-client/0.1.0', bootstrapAddrs: [address], autoMonitor: false })
    stops.push(async () => { await refused.stop() })
    const no = await refused.call('connectWithTimeout', {})
    expect({ success: no.success, category: no.error?.category }).toEqual({ success: false, category: 'rejected' })
    const admitted = await LocalNode.start({ name: 'late-admitted', role: 'peer', transport: 'tcp', identitySeed: 'late-admitted', agentVersion: 'chiral-admitted/1.0.0', bootstrapAddrs: [address], autoMonitor: false })
    stops.push(async () => { await admitted.stop() })
    const yes = await admitted.call('connectWithTimeout', {})
    expect({ success: yes.success, error: yes.error?.detail }).toEqual({ success: true, error: undefined })
  }, 60_000)
})
