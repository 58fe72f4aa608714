import { describe, expect, it } from 'vitest'
import { CommandError, parseRequest, type CommandName } from './commands.ts'
import { CONNECTION_TIMEOUT_RANGE_MS, MAX_DURATION_MS, PlanTimingSchema, TimeScaleSchema } from './config.ts'
import { SupervisorConfigSchema } from './supervisor/config.ts'

const PEER = '12D3KooWLbeNXRHPWeHgnA3C4vWQFPqGvD8cu3LNSwNGUNdc8MRn'
const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

/** The CommandError a bad request produces: `dispatch` parses with it for the in-process node and the control channel alike. */
function refusal (command: CommandName, request: unknown): CommandError {
  try {
    parseRequest(command, request)
  } catch (err) {
    expect(err).toBeInstanceOf(CommandError)
    expect((err as CommandError).code).toBe('bad-request')
    return err as CommandError
  }
  throw new Error(`${command} accepted ${JSON.stringify(request)}`)
}

describe('command requests: input the node would otherwise fail on later', () => {
  it('a bootstrap address that is not a multiaddr names the field (was a 500 InvalidMultiaddrError)', () => {
    const e = refusal('connectWithTimeout', { bootstrapAddrs: ['garbage'] })
    expect(e.field).toBe('bootstrapAddrs.0')
    expect(e.message).toMatch(/not a multiaddr/)
    expect(refusal('connectWithTimeout', { bootstrapAddrs: ['/ip4/127.0.0.1/tcp/4001/p2p/notapeer'] }).field).toBe('bootstrapAddrs.0')
    expect(() => parseRequest('connectWithTimeout', { bootstrapAddrs: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`, '/dns4/b1/tcp/4001', '/memory/boot'] })).not.toThrow()
  })

  it('a bidirectional-discovery timeout beyond any timer is refused (was a 500 RangeError)', () => {
    expect(refusal('waitForBidirectionalDiscovery', { timeoutMs: 999_999_999_999 }).field).toBe('timeoutMs')
    expect(() => parseRequest('waitForBidirectionalDiscovery', { timeoutMs: MAX_DURATION_MS })).not.toThrow()
  })

  it('an invalid CID is refused by provide, getProviderRecords and downloadFile (provide answered 200)', () => {
    for (const command of ['provide', 'getProviderRecords', 'downloadFile'] as const) {
      const e = refusal(command, { cid: 'not-a-cid' })
      expect(e.field).toBe('cid')
      expect(e.message).toMatch(/not a CID/)
      expect(() => parseRequest(command, { cid: CID })).not.toThrow()
    }
  })

  it('invalid base64 is refused by shareFile (Node decoded "!!notbase64!!" to 6 bytes)', () => {
    for (const bad of ['!!notbase64!!', 'abc', 'ab=c']) expect(refusal('shareFile', { name: 'f', contentBase64: bad }).field).toBe('contentBase64')
    for (const good of ['', 'aGk=', 'aGVsbG8=', Buffer.from('any bytes \u0000\u00ff').toString('base64')]) {
      expect(() => parseRequest('shareFile', { name: 'f', contentBase64: good })).not.toThrow()
    }
  })

  it('a health address that is not a multiaddr is refused (the monitor started on "garbage")', () => {
    expect(refusal('startHealthMonitoring', { address: 'garbage' }).field).toBe('address')
    expect(refusal('checkBootstrapHealth', { address: 'garbage' }).field).toBe('address')
  })

  it('peer IDs are checked where a command takes one', () => {
    expect(refusal('verifyPeerReachable', { peerId: 'nope' }).field).toBe('peerId')
    expect(refusal('findPeer', { peerId: 'nope' }).field).toBe('peerId')
    expect(refusal('waitForBidirectionalDiscovery', { peerIds: [PEER, 'nope'] }).field).toBe('peerIds.1')
    expect(() => parseRequest('findPeer', { peerId: PEER })).not.toThrow()
  })

  it('an unknown key is named in "field" (it was "")', () => {
    const e = refusal('connectWithTimeout', { timeOutMs: 5000 })
    expect(e.field).toBe('timeOutMs')
    expect(e.message).toContain('"timeOutMs"')
    expect(e.message).toMatch(/\(did you mean "timeoutMs"\?\)$/)
  })
})

describe('the connection timeout range (plan Risk #1) is one rule', () => {
  it('5000–30000 ms for node timing, busy retries and the command alike', () => {
    expect(CONNECTION_TIMEOUT_RANGE_MS).toEqual({ min: 5_000, max: 30_000 })
    for (const ms of [4_999, 30_001]) {
      expect(PlanTimingSchema.safeParse({ connectionTimeoutMs: ms }).success).toBe(false)
      expect(PlanTimingSchema.safeParse({ busyRetryTimeoutMs: ms }).success).toBe(false)
      expect(() => parseRequest('connectWithTimeout', { timeoutMs: ms })).toThrow(CommandError)
    }
    for (const ms of [5_000, 30_000]) {
      expect(PlanTimingSchema.safeParse({ connectionTimeoutMs: ms, busyRetryTimeoutMs: ms }).success).toBe(true)
      expect(() => parseRequest('connectWithTimeout', { timeoutMs: ms })).not.toThrow()
    }
  })
})

describe('the time scale range is one rule', () => {
  it('0 < timeScale ≤ 1 for node timing and the supervisor alike', () => {
    for (const x of [0, -0.1, 1.01]) {
      expect(TimeScaleSchema.safeParse(x).success).toBe(false)
      expect(PlanTimingSchema.safeParse({ timeScale: x }).success).toBe(false)
      expect(SupervisorConfigSchema.safeParse({ timeScale: x }).success).toBe(false)
    }
    for (const x of [0.001, 0.1, 1]) expect(PlanTimingSchema.safeParse({ timeScale: x }).success && SupervisorConfigSchema.safeParse({ timeScale: x }).success).toBe(true)
  })
})
