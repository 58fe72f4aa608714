import { afterEach, describe, expect, it } from 'vitest'
import { CommandError } from '../../nodes/commands.ts'
import { checkContract, describeRefusals, gateOn, referenceBootstrap, referencePeer, runForeignPeerScenario, started, stopAll } from './peer-test-support.ts'

/**
 * The rust-libp2p reference node as a chiral-sim *peer* (issue 9, item 2): it serves the control channel's contract
 * (nodes/contract.schema.json) and the runner drives it through the same handle as its own nodes and the go peer.
 * Every answer is checked by RemoteNode against the zod schemas, so a field the rust node gets wrong fails here.
 */
const { gate, why } = gateOn('rust')
afterEach(stopAll)

describe.skipIf(gate)(`the rust reference node as a peer${why}`, () => {
  it('serves the contract: info, connect, health, inspect, events; refuses callers without the token, from pages, with bodies that are not JSON or not the schema', async () => {
    const boot = await referenceBootstrap('rust', ['--idle-timeout', '10'])
    await checkContract('rust', boot.ready, 'rust-libp2p 0.54.1')
  }, 60_000)

  it('serves the contract behind a go bootstrap too', async () => {
    const { gate: noGo } = gateOn('go')
    if (noGo) return
    const boot = await referenceBootstrap('go')
    await checkContract('rust', boot.ready, 'rust-libp2p 0.54.1')
  }, 60_000)

  it('categorizes connect failures: refused, protocol, rejected after identify; an idle-closing bootstrap admits it', async () => {
    const gone = await referenceBootstrap('rust', ['--idle-timeout', '10'])
    const a = await referencePeer('rust', 'A')
    await started.shift()!.kill()
    const refused = await a.call('connectWithTimeout', { bootstrapAddrs: [gone.ready], timeoutMs: 5_000 })
    expect(refused.success).toBe(false)
    expect(refused.error?.category).toBe('refused')
    expect(refused.error?.message).toBe('Bootstrap server not available')

    // A bootstrap on another DHT protocol says so when our DHT stream is negotiated: `protocol`, also when it then
    // closes the connection as idle (found: five such closes read as an admission refusal).
    for (const idle of ['10', '0']) {
      const other = await referenceBootstrap('rust', ['--idle-timeout', idle, '--dht-protocol', '/other/kad/1.0.0'])
      const mismatch = await a.call('connectWithTimeout', { bootstrapAddrs: [other.ready], timeoutMs: 5_000 })
      expect([idle, mismatch.error?.category, mismatch.error?.detail]).toEqual([idle, 'protocol', expect.stringMatching(/\/ipfs\/kad\/1\.0\.0/)])
    }

    // A rust bootstrap that drops agents it does not admit, right after identify; the rust peer says what
    // rust-libp2p says (its default agent), which the policy does not admit.
    const strict = await referenceBootstrap('rust', ['--idle-timeout', '10', '--admit-agent-prefix', 'somebody-else'])
    const rejected = await a.call('connectWithTimeout', { bootstrapAddrs: [strict.ready], timeoutMs: 5_000 })
    expect(rejected.error?.category).toBe('rejected')
    expect(rejected.error?.detail).toMatch(/closed the connection after identify while our DHT stream was open/)
    expect(rejected.error?.message).toBe('Bootstrap closed the connection after identify - this client was not admitted')
    // Told an agent the policy admits, it is admitted.
    const admittedAgent = await referencePeer('rust', 'B', [], { agentVersion: 'somebody-else/1.0' })
    expect((await admittedAgent.call('connectWithTimeout', { bootstrapAddrs: [strict.ready], timeoutMs: 5_000 })).success).toBe(true)

    // rust-libp2p 0.53/0.54's default idle timeout of 0 closes a connection at its first poll about 1 in 6: never a
    // rejection, never a failure. Several rounds so that the early close is met.
    const idle = await referenceBootstrap('rust', ['--idle-timeout', '0'])
    for (let round = 0; round < 6; round++) {
      const admitted = await a.call('connectWithTimeout', { bootstrapAddrs: [idle.ready], timeoutMs: 5_000 })
      expect([round, admitted.error]).toEqual([round, undefined])
      expect(admitted.success).toBe(true)
      const health = await a.call('checkBootstrapHealth', { address: idle.ready })
      expect([round, health.errorMessage, health.isReachable]).toEqual([round, null, true])
    }

    // A port nobody answers on at the libp2p level within the deadline (a TCP listener that never speaks): timeout.
    const net = await import('node:net')
    const sockets = new Set<import('node:net').Socket>()
    const silent = net.createServer(socket => { sockets.add(socket) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    started.push({ kill: async () => { for (const s of sockets) s.destroy(); await new Promise(resolve => silent.close(resolve)) } })
    const port = (silent.address() as { port: number }).port
    const hung = await a.call('connectWithTimeout', { bootstrapAddrs: [`/ip4/127.0.0.1/tcp/${port}/p2p/${gone.ready.split('/p2p/')[1]!}`], timeoutMs: 5_000 })
    expect(hung.error?.category).toBe('timeout')

    const err = await a.call('shareFile', { name: 'x.txt', contentBase64: 'eA==' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CommandError)
    expect((err as CommandError).code).toBe('not-supported')
    expect((err as CommandError).message).toMatch(/shareFile.*not implemented by chiral-rust-node/)
  }, 90_000)

  it('two rust peers behind a bootstrap that answers FIND_NODE with nobody (routable-only on loopback) are never verified', async () => {
    const boot = await referenceBootstrap('rust', ['--idle-timeout', '10', '--routable-only'])
    const a = await referencePeer('rust', 'A', [boot.ready])
    const b = await referencePeer('rust', 'B', [boot.ready])
    expect((await a.call('connectWithTimeout', {})).success).toBe(true)
    expect((await b.call('connectWithTimeout', {})).success).toBe(true)
    for (const p of [a, b]) {
      const status = await p.call('verifyPeerDiscovery', {})
      expect(status.overall).not.toBe('verified')
      expect(status.firstPeer).toBe(false)
    }
  }, 60_000)

  it('finds a peer by a DHT lookup, and its provider record, through the bootstrap', async () => {
    const boot = await referenceBootstrap('rust', ['--idle-timeout', '10'])
    const a = await referencePeer('rust', 'A', [boot.ready])
    const b = await referencePeer('rust', 'B', [boot.ready])
    expect((await a.call('connectWithTimeout', {})).success).toBe(true)
    expect((await b.call('connectWithTimeout', {})).success).toBe(true)
    const bId = (await b.call('info', {})).peerId
    const aId = (await a.call('info', {})).peerId
    const waited = await a.call('waitForBidirectionalDiscovery', { peerIds: [bId], timeoutMs: 15_000 })
    expect(waited.success).toBe(true)
    expect((await a.call('findPeer', { peerId: bId })).found).toBe(true)
    const cid = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
    expect(await a.call('provide', { cid })).toEqual({ ok: true })
    expect((await b.call('getProviderRecords', { cid })).providers).toContain(aId)
    const verified = await a.call('verifyPeerDiscovery', {})
    expect(verified).toMatchObject({ overall: 'verified', peerDialing: true, dhtReadWrite: true })
    expect(verified.discoveredPeers).toContain(bId)
  }, 60_000)

  it.each(['tcp', 'process'] as const)('runs in a scenario next to js peers (%s mode); the runner names the check the rust peer could not make', async mode => {
    await runForeignPeerScenario('rust', 'rust', mode, ['--idle-timeout', '10'])
  }, 120_000)
})

describeRefusals('rust', 'R', { dht: { alpha: 5 }, field: 'nodes.1.dht.alpha', message: /^rust peer "R": a rust peer is not told js-libp2p's alpha/ })
