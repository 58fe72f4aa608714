import { describe, expect, it } from 'vitest'
import { isStaleDial, judgeWithDepartures } from './discovery-verdict.ts'
import type { DiscoveryStatus } from './schemas.ts'

const partial = (over: Partial<DiscoveryStatus> = {}): DiscoveryStatus => ({
  bootstrapConnected: true,
  routingTablePopulated: true,
  eventsWorking: true,
  dhtReadWrite: true,
  peerDialing: false,
  fileDiscovery: false,
  overall: 'partial',
  firstPeer: false,
  routingTableSize: 3,
  discoveredPeers: ['A', 'B', 'C'],
  unreachable: [{ peerId: 'C', error: 'timeout: TimeoutError' }],
  skipped: ['fileDiscovery'],
  message: 'partial',
  ...over
})
const gone = (...ids: string[]) => (p: string): boolean => ids.includes(p)

describe('judgeWithDepartures', () => {
  it('verifies a node whose only unanswered dials went to peers that had left', () => {
    const { status, departedDials } = judgeWithDepartures(partial({ unreachable: [{ peerId: 'B', error: 'refused: ConnectionFailedError: No memory listener found at /memory/b' }, { peerId: 'C', error: 'timeout: x' }] }), gone('C'))
    expect({ overall: status.overall, peerDialing: status.peerDialing, departedDials }).toEqual({ overall: 'verified', peerDialing: true, departedDials: ['C'] })
    expect(status.message).toMatch(/1 unanswered dial went to peers that had left/)
  })

  it('keeps the node\'s verdict when a failed dial went to a peer that was up', () => {
    expect(judgeWithDepartures(partial({ unreachable: [{ peerId: 'B', error: 'timeout: x' }, { peerId: 'C', error: 'timeout: x' }] }), gone('C')).status.overall).toBe('partial')
  })

  it('keeps it when another check failed too', () => {
    expect(judgeWithDepartures(partial({ dhtReadWrite: false }), gone('C')).status.overall).toBe('partial')
  })

  it('keeps it when no discovered peer was reachable: knowing only departed peers shows nothing', () => {
    const all = partial({ discoveredPeers: ['C'], unreachable: [{ peerId: 'C', error: 'timeout: x' }] })
    expect(judgeWithDepartures(all, gone('C')).status.overall).toBe('partial')
  })

  it('keeps it when the node did not say which dials failed (another implementation)', () => {
    const { unreachable: _, ...silent } = partial()
    expect(judgeWithDepartures(silent, gone('C')).status.overall).toBe('partial')
  })
})

describe('isStaleDial', () => {
  it('is a dial that found nobody listening, not any refusal', () => {
    expect(isStaleDial('refused: Error: connect ECONNREFUSED 127.0.0.1:4001')).toBe(true)
    expect(isStaleDial('refused: ConnectionFailedError: No memory listener found at /memory/a')).toBe(true)
    expect(isStaleDial('refused: DialDeniedError: The connection gater denied all addresses in the dial request')).toBe(false)
    expect(isStaleDial('refused: StreamResetError: stream has been reset')).toBe(false)
    expect(isStaleDial('timeout: TimeoutError')).toBe(false)
  })
})
