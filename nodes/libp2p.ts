import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, removePublicAddressesMapper } from '@libp2p/kad-dht'
import type { KadDHT, PeerInfoMapper } from '@libp2p/kad-dht'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Identify } from '@libp2p/identify'
import { createHash } from 'node:crypto'
import type { NodeConfig } from './config.ts'

export type ChiralServices = { identify: Identify, ping: Ping, dht: KadDHT }
export type ChiralLibp2p = Libp2p<ChiralServices>

/** Namespace of the plan's `discovery-test-{peerId}` records; every node validates it so any node can store one. */
export const RECORD_NAMESPACE = 'chiral'

export const ADDRESS_MAPPERS: Record<NodeConfig['dht']['addressMapper'], PeerInfoMapper> = {
  passthrough: passthroughMapper,
  removePrivate: removePrivateAddressesMapper,
  removePublic: removePublicAddressesMapper
}

/** Host and port of a multiaddr without its /p2p/ part: how a denied address is matched. */
function transportKey (addr: string): string {
  return addr.split('/p2p/')[0] ?? addr
}

/**
 * Refuses dials to the listed transport addresses (the real addresses of nodes behind fault proxies). Everything
 * else is allowed, as libp2p's default gater does on Node.
 */
function denyDialGater (deny: string[]): { denyDialMultiaddr: (ma: { toString(): string }) => boolean } {
  const denied = new Set(deny.map(transportKey))
  return { denyDialMultiaddr: (ma) => denied.has(transportKey(ma.toString())) }
}

/** The same seed always yields the same key, so a restarted bootstrap keeps its peer ID and its multiaddr. */
export async function privateKeyFromSeed (seed: string): Promise<PrivateKey> {
  return await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(seed).digest())
}

/** Memory addresses are process-global: derive them from the seed so parallel runs never collide. */
export function defaultListen (config: NodeConfig): string[] {
  if (config.transport === 'memory') {
    const tag = createHash('sha256').update(config.identitySeed).digest('hex').slice(0, 12)
    return [`/memory/${config.name}-${tag}`]
  }
  return ['/ip4/127.0.0.1/tcp/0']
}

/**
 * Builds the libp2p node for either role. The settings here are the deliberate ones the facts notes call for:
 * explicit DHT mode, an explicit address mapper, dial timeouts longer than the plan's so that the plan's own
 * AbortSignal decides, and a bootstrap that accepts bursts of dials from one host.
 */
export async function createChiralLibp2p (config: NodeConfig): Promise<ChiralLibp2p> {
  const isBootstrap = config.role === 'bootstrap'
  // libp2p's per-address timeout (6 s) would otherwise fire before the plan's 10 s and surface as an
  // EncryptionFailedError; the longest configurable plan timeout is 30 s.
  const dialCeilingMs = 60_000
  return await createLibp2p({
    // Started by LocalNode once its protocol handlers and listeners are in place (a failed start leaks otherwise).
    start: false,
    privateKey: await privateKeyFromSeed(config.identitySeed),
    // identify announces nodeInfo.userAgent as the agent version.
    ...(config.agentVersion != null ? { nodeInfo: { userAgent: config.agentVersion } } : {}),
    addresses: {
      listen: config.listen ?? defaultListen(config),
      ...(config.announce != null ? { announce: config.announce } : {})
    },
    transports: [config.transport === 'memory' ? memory() : tcp()],
    connectionEncrypters: [noise()],
    // yamux pings every connection every 30 s. Nothing acts on it (js-yamux ignores a failed ping and nothing reads
    // its RTT; liveness is the connection monitor's), and the memory transport has no middlebox to keep open, while
    // N simulated nodes in one process pay for every connection's pings on one thread: 7–11 % of the CPU at N = 1000
    // (bench/RESULTS.md). Real transports keep yamux's default.
    streamMuxers: [yamux({ enableKeepAlive: config.transport !== 'memory' })],
    connectionGater: denyDialGater(config.network.denyDial),
    connectionMonitor: connectionMonitorOf(config),
    connectionManager: {
      dialTimeout: dialCeilingMs,
      addressDialTimeout: dialCeilingMs,
      // All simulated peers share 127.0.0.1: the default of 5 inbound connections per second per IP would make a
      // healthy bootstrap look overloaded. "Busy" is decided by the bootstrap's own maxPeers answer instead.
      inboundConnectionThreshold: 100_000,
      maxIncomingPendingConnections: isBootstrap ? 10_000 : 100,
      maxConnections: isBootstrap ? config.maxPeers + 256 : 1_000
    },
    services: {
      identify: identify(),
      // kad-dht admits a contact only after pinging it, and the plan's health checks and reachability checks ping
      // too. With ping's default of one outbound stream per connection they collide, the admission ping fails with
      // TooManyOutboundProtocolStreamsError and the peer is silently left out of the routing table.
      ping: ping({ protocolPrefix: config.dht.pingProtocolPrefix, maxOutboundStreams: 32, maxInboundStreams: 32 }),
      dht: kadDHT({
        protocol: config.dht.protocol,
        clientMode: config.dht.mode === 'client',
        peerInfoMapper: ADDRESS_MAPPERS[config.dht.addressMapper],
        ...(config.dht.alpha != null ? { alpha: config.dht.alpha } : {}),
        ...(config.dht.disjointPaths != null ? { disjointPaths: config.dht.disjointPaths } : {}),
        ...(config.dht.initialQuerySelfIntervalMs == null
          ? { initialQuerySelfInterval: 2 ** 31 - 1, querySelfInterval: 2 ** 31 - 1 }
          : { initialQuerySelfInterval: config.dht.initialQuerySelfIntervalMs }),
        validators: { [RECORD_NAMESPACE]: async () => {} },
        selectors: { [RECORD_NAMESPACE]: () => 0 }
      })
    }
  })
}

/** The connection monitor's setting: the config's, else on for TCP (libp2p's 10 s) and off for memory. */
export function connectionMonitorOf (config: NodeConfig): { enabled: boolean, pingInterval?: number, protocolPrefix: string } {
  const interval = config.connectionMonitorIntervalMs === undefined
    ? (config.transport === 'tcp' ? 10_000 : null)
    : config.connectionMonitorIntervalMs
  // The monitor pings over the node's own ping protocol, so a node on another prefix (cause 5) is not cut off by it.
  return interval == null
    ? { enabled: false, protocolPrefix: config.dht.pingProtocolPrefix }
    : { enabled: true, pingInterval: interval, protocolPrefix: config.dht.pingProtocolPrefix }
}
