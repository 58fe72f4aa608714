import net from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ConnectionFailedError, DialError, InvalidPeerIdError, TimeoutError, UnsupportedProtocolError } from '@libp2p/interface'
import type { Libp2p } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { startBlackhole } from '../sim/host/blackhole.ts'
import { BOOTSTRAP_ERROR_MESSAGES, categorizeBootstrapError } from './errors.ts'
import { BusyError } from './hello.ts'
import { CategorizedErrorSchema, ErrorCategorySchema } from './schemas.ts'
import type { ErrorCategory } from './schemas.ts'

/** libp2p keeps EncryptionFailedError and NoValidAddressesError private: same shape, an Error with its own name. */
function libp2pError (name: 'EncryptionFailedError' | 'NoValidAddressesError', message: string, options?: ErrorOptions): Error {
  return Object.assign(new Error(message, options), { name })
}
const EncryptionFailed = (message: string, options?: ErrorOptions): Error => libp2pError('EncryptionFailedError', message, options)
const errno = (code: string, message: string): Error => Object.assign(new Error(message), { code })
const refusedTcp = (): Error => errno('ECONNREFUSED', 'connection error 127.0.0.1:4001: connect ECONNREFUSED 127.0.0.1:4001')

describe('categorizeBootstrapError: wrappers and shapes', () => {
  const cases: Array<[string, unknown, ErrorCategory, string]> = [
    ['DOMException TimeoutError (the dial signal fired)', new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 'timeout', 'TimeoutError: The operation was aborted due to timeout'],
    ['EncryptionFailedError from addressDialTimeout', EncryptionFailed('The operation was aborted due to timeout'), 'timeout', 'EncryptionFailedError: The operation was aborted due to timeout'],
    ['TCP connect timeout', new TimeoutError('Connection timeout after 6000ms'), 'timeout', 'TimeoutError: Connection timeout after 6000ms'],
    ['bare AbortError for one address', new DOMException('This operation was aborted', 'AbortError'), 'timeout', 'AbortError: This operation was aborted'],
    ['ETIMEDOUT errno', errno('ETIMEDOUT', 'connect ETIMEDOUT 10.0.0.1:4001'), 'timeout', 'Error: connect ETIMEDOUT 10.0.0.1:4001'],
    ['ECONNREFUSED', refusedTcp(), 'refused', 'Error: connection error 127.0.0.1:4001: connect ECONNREFUSED 127.0.0.1:4001'],
    ['AggregateError around ECONNREFUSED', new AggregateError([refusedTcp()], 'All multiaddr dials failed'), 'refused', 'Error: connection error 127.0.0.1:4001: connect ECONNREFUSED 127.0.0.1:4001'],
    ['EncryptionFailedError around ECONNRESET (bootstrap at its limit)', EncryptionFailed('read ECONNRESET', { cause: errno('ECONNRESET', 'read ECONNRESET') }), 'refused', 'Error: read ECONNRESET'],
    ['ECONNRESET only in the message (EncryptionFailedError drops the cause)', EncryptionFailed('connection error 1.2.3.4:4001: read ECONNRESET'), 'refused', 'EncryptionFailedError: connection error 1.2.3.4:4001: read ECONNRESET'],
    ['memory address nobody listens on', new ConnectionFailedError('No memory listener found at /memory/x'), 'refused', 'ConnectionFailedError: No memory listener found at /memory/x'],
    ['EHOSTUNREACH three causes deep', new Error('dial failed', { cause: new Error('transport', { cause: errno('EHOSTUNREACH', 'connect EHOSTUNREACH 2001:db8::1:4001') }) }), 'unreachable', 'Error: connect EHOSTUNREACH 2001:db8::1:4001'],
    ['ENETUNREACH as a code only', errno('ENETUNREACH', 'connect failed'), 'unreachable', 'Error: connect failed'],
    ['ENOTFOUND (DNS)', errno('ENOTFOUND', 'getaddrinfo ENOTFOUND boot.example'), 'unreachable', 'Error: getaddrinfo ENOTFOUND boot.example'],
    ['NoValidAddressesError', libp2pError('NoValidAddressesError', 'The dial request has no valid addresses for peer: 12D3'), 'unreachable', 'NoValidAddressesError: The dial request has no valid addresses for peer: 12D3'],
    ['DialError dial self', new DialError('Tried to dial self'), 'already-connected', 'DialError: Tried to dial self'],
    ['InvalidPeerIdError dial self', new InvalidPeerIdError('Can not dial self'), 'already-connected', 'InvalidPeerIdError: Can not dial self'],
    ['already connected', new Error('Peer is already connected'), 'already-connected', 'Error: Peer is already connected'],
    ['EADDRINUSE', errno('EADDRINUSE', 'listen EADDRINUSE: address already in use 127.0.0.1:4001'), 'already-connected', 'Error: listen EADDRINUSE: address already in use 127.0.0.1:4001'],
    ['UnsupportedProtocolError', new UnsupportedProtocolError('Protocol selection failed - could not negotiate /chiral/kad/1.0.0'), 'protocol', 'UnsupportedProtocolError: Protocol selection failed - could not negotiate /chiral/kad/1.0.0'],
    ['not a libp2p listener (multistream got garbage)', EncryptionFailed('Missing newline'), 'protocol', 'EncryptionFailedError: Missing newline'],
    ['BusyError class', new BusyError('bootstrap has 11 peers (max 10)'), 'busy', 'BusyError: bootstrap has 11 peers (max 10)'],
    ['plain object named BusyError (crossed the control channel)', { name: 'BusyError', message: 'full' }, 'busy', 'BusyError: full'],
    ['code busy', Object.assign(new Error('try later'), { code: 'busy' }), 'busy', 'Error: try later'],
    ['unrelated error', new Error('boom'), 'unknown', 'Error: boom'],
    ['thrown string', 'boom', 'unknown', 'Error: boom'],
    ['undefined', undefined, 'unknown', 'Error: undefined']
  ]

  it.each(cases)('%s', (_label, error, category, detail) => {
    const result = categorizeBootstrapError(error)
    expect(result).toEqual({ category, ...BOOTSTRAP_ERROR_MESSAGES[category], detail })
    expect(CategorizedErrorSchema.parse(result)).toEqual(result)
  })

  it('context.timedOut wins over any cause', () => {
    expect(categorizeBootstrapError(refusedTcp(), { timedOut: true, timeoutMs: 10_000 }).category).toBe('timeout')
    expect(categorizeBootstrapError(new BusyError('full'), { timedOut: true }).category).toBe('timeout')
    expect(categorizeBootstrapError(refusedTcp(), { timedOut: false }).category).toBe('refused')
  })

  it('prefers a definite answer over a timeout when a dial tried several addresses', () => {
    const aggregate = new AggregateError([new DOMException('aborted', 'AbortError'), refusedTcp()], 'All multiaddr dials failed')
    expect(categorizeBootstrapError(aggregate).category).toBe('refused')
    const busy = new AggregateError([refusedTcp(), new Error('wrapped', { cause: new BusyError('full') })], 'All multiaddr dials failed')
    expect(categorizeBootstrapError(busy)).toMatchObject({ category: 'busy', detail: 'BusyError: full' })
  })

  it('reports the deepest matching cause as the detail', () => {
    const inner = errno('ECONNRESET', 'read ECONNRESET')
    const error = new AggregateError([EncryptionFailed('connection error: read ECONNRESET', { cause: inner })], 'All multiaddr dials failed')
    expect(categorizeBootstrapError(error).detail).toBe('Error: read ECONNRESET')
  })

  it('survives a cause cycle', () => {
    const a = new Error('a') as Error & { cause?: unknown }
    const b = new Error('b', { cause: a })
    a.cause = b
    expect(categorizeBootstrapError(a)).toMatchObject({ category: 'unknown', detail: 'Error: b' })
  })

  it('has a distinct message and suggested action for every category', () => {
    for (const category of ErrorCategorySchema.options) {
      expect(BOOTSTRAP_ERROR_MESSAGES[category].message.length).toBeGreaterThan(0)
      expect(BOOTSTRAP_ERROR_MESSAGES[category].suggestedAction.length).toBeGreaterThan(0)
    }
    const actions = new Set(ErrorCategorySchema.options.map(c => BOOTSTRAP_ERROR_MESSAGES[c].suggestedAction))
    expect(actions.size).toBe(ErrorCategorySchema.options.length)
    expect(BOOTSTRAP_ERROR_MESSAGES.timeout.message).toBe('Bootstrap not responding - may be down')
    // Solution #1, Expected Behavior After Fix: the plan's suggested action for a timeout, verbatim.
    expect(BOOTSTRAP_ERROR_MESSAGES.timeout.suggestedAction).toBe('Try again later or check internet connection')
    expect(BOOTSTRAP_ERROR_MESSAGES.refused.message).toBe('Bootstrap server not available')
    expect(BOOTSTRAP_ERROR_MESSAGES.unreachable.message).toBe('Check your internet connection')
    expect(BOOTSTRAP_ERROR_MESSAGES['already-connected'].message).toBe('DHT already running on this port')
    expect(BOOTSTRAP_ERROR_MESSAGES.busy.message).toBe('Bootstrap is busy - retrying with a longer timeout')
  })
})

describe('categorizeBootstrapError: errors from real dials', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  afterEach(async () => {
    await Promise.allSettled(cleanups.splice(0).reverse().map(async fn => await fn()))
  })

  async function node (transport: 'memory' | 'tcp', connectionManager: { addressDialTimeout?: number } = {}): Promise<Libp2p> {
    const listen = transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : `/memory/errors-test-${crypto.randomUUID()}`
    const created = await createLibp2p({
      addresses: { listen: [listen] },
      transports: [transport === 'tcp' ? tcp() : memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { dialTimeout: 30_000, addressDialTimeout: 30_000, ...connectionManager }
    })
    cleanups.push(async () => { await created.stop() })
    return created
  }

  async function randomPeerId (): Promise<string> {
    return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  }

  /** Dials with a deadline and returns what the dial threw, with the time it took. */
  async function failedDial (dialer: Libp2p, addr: string, timeoutMs = 5_000): Promise<{ error: unknown, elapsedMs: number }> {
    const started = performance.now()
    try {
      await dialer.dial(multiaddr(addr), { signal: AbortSignal.timeout(timeoutMs) })
    } catch (error) {
      return { error, elapsedMs: performance.now() - started }
    }
    throw new Error(`dial to ${addr} unexpectedly succeeded`)
  }

  async function closedTcpPort (): Promise<number> {
    const server = net.createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    await new Promise(resolve => server.close(resolve))
    return port
  }

  it('closed TCP port → refused, fast', async () => {
    const dialer = await node('tcp')
    const { error, elapsedMs } = await failedDial(dialer, `/ip4/127.0.0.1/tcp/${await closedTcpPort()}/p2p/${await randomPeerId()}`)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'refused', detail: expect.stringMatching(/ECONNREFUSED/) })
    expect(elapsedMs).toBeLessThan(1_000)
  })

  it('TCP reset on accept → refused', async () => {
    const server = net.createServer(socket => { socket.resetAndDestroy() })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => { await new Promise(resolve => server.close(resolve)) })
    const dialer = await node('tcp')
    const { error } = await failedDial(dialer, `/ip4/127.0.0.1/tcp/${(server.address() as net.AddressInfo).port}/p2p/${await randomPeerId()}`)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'refused', detail: expect.stringMatching(/ECONNRESET/) })
  })

  it('memory address nobody listens on → refused', async () => {
    const dialer = await node('memory')
    const { error } = await failedDial(dialer, `/memory/nobody-${crypto.randomUUID()}/p2p/${await randomPeerId()}`)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'refused', detail: expect.stringMatching(/^ConnectionFailedError: No memory listener found/) })
  })

  it('an address no transport of the node can dial → unreachable', async () => {
    const dialer = await node('memory')
    const { error } = await failedDial(dialer, `/ip4/127.0.0.1/tcp/4001/p2p/${await randomPeerId()}`)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'unreachable', detail: expect.stringMatching(/^NoValidAddressesError/) })
  })

  it('ENETUNREACH from the kernel → unreachable', async (ctx) => {
    const dialer = await node('tcp')
    // Linux refuses a TCP connect to the broadcast address with ENETUNREACH at once; other kernels may not.
    const { error } = await failedDial(dialer, `/ip4/255.255.255.255/tcp/4001/p2p/${await randomPeerId()}`, 2_000)
    if (!/ENETUNREACH|EHOSTUNREACH/.test(String((error as Error).message))) ctx.skip()
    expect(categorizeBootstrapError(error).category).toBe('unreachable')
  })

  it('dialing itself → already-connected', async () => {
    const dialer = await node('tcp')
    const { error } = await failedDial(dialer, dialer.getMultiaddrs()[0]?.toString() ?? '')
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'already-connected', detail: 'InvalidPeerIdError: Can not dial self' })
  })

  it('listening on a port already in use → already-connected', async () => {
    const first = await node('tcp')
    const taken = first.getMultiaddrs()[0]?.decapsulate('/p2p').toString() ?? ''
    const second = await createLibp2p({ start: false, addresses: { listen: [taken] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    cleanups.push(async () => { await second.stop() })
    const error = await Promise.resolve(second.start()).then(() => { throw new Error('second listener unexpectedly started') }, (err: unknown) => err)
    expect(categorizeBootstrapError(error).category).toBe('already-connected')
  })

  it('a remote that does not speak the protocol → protocol', async () => {
    const [dialer, remote] = await Promise.all([node('tcp'), node('tcp')])
    const error = await dialer.dialProtocol(remote.getMultiaddrs(), '/chiral/kad/1.0.0', { signal: AbortSignal.timeout(5_000) })
      .then(() => { throw new Error('protocol unexpectedly negotiated') }, (err: unknown) => err)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'protocol', detail: expect.stringMatching(/^UnsupportedProtocolError/) })
  })

  it('libp2p addressDialTimeout firing before the caller signal still → timeout (EncryptionFailedError)', async () => {
    const hole = await startBlackhole({ transport: 'tcp', name: 'errors-address-timeout' })
    cleanups.push(async () => { await hole.close() })
    const dialer = await node('tcp', { addressDialTimeout: 800 })
    const { error, elapsedMs } = await failedDial(dialer, hole.multiaddr, 5_000)
    expect((error as Error).name).toBe('EncryptionFailedError')
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'timeout', detail: 'EncryptionFailedError: The operation was aborted due to timeout' })
    expect(elapsedMs).toBeLessThan(3_000)
  })

  it('the caller signal firing on a hung bootstrap → timeout', async () => {
    const hole = await startBlackhole({ transport: 'memory', name: `errors-hung-${crypto.randomUUID()}` })
    cleanups.push(async () => { await hole.close() })
    const dialer = await node('memory')
    const { error } = await failedDial(dialer, hole.multiaddr, 500)
    expect(categorizeBootstrapError(error)).toMatchObject({ category: 'timeout', detail: 'TimeoutError: The operation was aborted due to timeout' })
    expect(categorizeBootstrapError(error, { timedOut: true, timeoutMs: 500 }).category).toBe('timeout')
  })
})
