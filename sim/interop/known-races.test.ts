import { describe, expect, it } from 'vitest'
import type { ScenarioRecord } from '../../scenarios/record.ts'
import { peersThatNeverAdmittedBootstrap } from './known-races.ts'

const BOOT = '12D3KooWboot'
let seq = 0
const ev = (time: number, node: string, type: string, rest: Record<string, unknown> = {}): Record<string, unknown> => ({ seq: seq++, time, node, type, ...rest })
const recordOf = (events: Array<Record<string, unknown>>): ScenarioRecord => ({ events } as unknown as ScenarioRecord)

describe('the fingerprint of a bootstrap kad-dht never admitted', () => {
  it('names a peer that connected and went on for seconds without adding the bootstrap', () => {
    const r = recordOf([
      ev(0, 'A', 'connect:done', { success: true }), ev(100, 'A', 'routing:add', { peerId: BOOT }),
      ev(200, 'C', 'connect:done', { success: true }), ev(300, 'C', 'routing:add', { peerId: '12D3KooWother' }),
      ev(6000, 'A', 'health:status')
    ])
    expect(peersThatNeverAdmittedBootstrap(r, BOOT)).toEqual(['C'])
  })

  it('is no evidence when the run ended, or the peer reconnected, before admission had its time', () => {
    const r = recordOf([
      ev(0, 'A', 'connect:done', { success: true }), ev(500, 'A', 'connect:done', { success: true }),
      ev(9000, 'B', 'connect:done', { success: true }), ev(9500, 'B', 'connect:done', { success: false })
    ])
    expect(peersThatNeverAdmittedBootstrap(r, BOOT)).toEqual([])
  })

  it('judges only the first connect: an entry from before a bootstrap restart may stay without a new add', () => {
    const r = recordOf([
      ev(0, 'A', 'connect:done', { success: true }), ev(50, 'A', 'routing:add', { peerId: BOOT }),
      ev(4000, 'A', 'connect:done', { success: true }), ev(9000, 'A', 'health:status')
    ])
    expect(peersThatNeverAdmittedBootstrap(r, BOOT)).toEqual([])
  })
})
