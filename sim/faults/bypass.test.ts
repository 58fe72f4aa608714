import { describe, expect, it } from 'vitest'
import { checkNoBypass } from './bypass.ts'

const direct = { from: 'peer1', to: 'boot', remoteAddr: '/ip4/127.0.0.1/tcp/40001' }

describe('checkNoBypass', () => {
  it('is valid when nothing went around the proxies', () => {
    expect(checkNoBypass([])).toEqual({ valid: true, problems: [] })
    expect(checkNoBypass([
      { link: 'peer1->boot', proxyBytes: { upstream: 1200, downstream: 900 }, connectionsOutsideProxy: [] },
      // A faulted link that carried nothing and had no direct connection either: the fault held, nobody got through.
      { link: 'peer2->boot', proxyBytes: { upstream: 0, downstream: 0 }, connectionsOutsideProxy: [] }
    ])).toEqual({ valid: true, problems: [] })
  })

  it('is invalid when the proxy carried nothing while the endpoints connected directly, naming link and address', () => {
    const r = checkNoBypass([{ link: 'peer1->boot', proxyBytes: { upstream: 0, downstream: 0 }, connectionsOutsideProxy: [direct] }])
    expect(r.valid).toBe(false)
    expect(r.problems).toHaveLength(1)
    expect(r.problems[0]).toContain('link peer1->boot')
    expect(r.problems[0]).toContain('the fault did nothing')
    expect(r.problems[0]).toContain('/ip4/127.0.0.1/tcp/40001')
    expect(r.problems[0]).toContain('peer1 → boot')
  })

  it('counts bytes that reached the proxy even if a toxic delivered none of them', () => {
    const r = checkNoBypass([{
      link: 'peer1->boot',
      proxyBytes: { upstream: 0, downstream: 0, received: { upstream: 250, downstream: 0 } },
      connectionsOutsideProxy: [direct]
    }])
    expect(r.valid).toBe(false)
    expect(r.problems[0]).toContain('partly bypassed')
    expect(r.problems[0]).toContain('250 bytes')
  })

  it('is invalid when only part of the traffic bypassed the proxy', () => {
    const r = checkNoBypass([{ link: 'peer1->boot', proxyBytes: { upstream: 10, downstream: 20 }, connectionsOutsideProxy: [direct] }])
    expect(r.valid).toBe(false)
    expect(r.problems[0]).toMatch(/link peer1->boot: traffic partly bypassed the fault — its proxy carried 30 bytes.*\/ip4\/127\.0\.0\.1\/tcp\/40001/)
  })

  it('reports every bad link, lists repeated connections once, and cuts long lists short', () => {
    const many = Array.from({ length: 8 }, (_, i) => ({ from: 'peer1', to: 'boot', remoteAddr: `/ip4/127.0.0.1/tcp/${40000 + i}` }))
    const r = checkNoBypass([
      { link: 'a', proxyBytes: { upstream: 0, downstream: 0 }, connectionsOutsideProxy: [direct, direct, direct] },
      { link: 'b', proxyBytes: { upstream: 0, downstream: 0 }, connectionsOutsideProxy: many },
      { link: 'c', proxyBytes: { upstream: 5, downstream: 5 }, connectionsOutsideProxy: [] }
    ])
    expect(r.valid).toBe(false)
    expect(r.problems).toHaveLength(2)
    expect(r.problems[0]!.split('/ip4/127.0.0.1/tcp/40001')).toHaveLength(2)
    expect(r.problems[1]).toContain('and 3 more')
    expect(r.problems[1]).toContain('tcp/40004')
    expect(r.problems[1]).not.toContain('tcp/40005')
  })
})
