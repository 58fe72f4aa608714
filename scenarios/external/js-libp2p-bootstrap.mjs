#!/usr/bin/env node
/**
 * A plain js-libp2p bootstrap node: deliberately not chiral-sim's node class and not its configuration. It stands
 * in for "the real network's bootstrap binary" in the external-bootstrap scenarios, which treat it as a black box
 * (no control channel; only libp2p: ping, identify, DHT queries, and what the peers see).
 *
 * Its configuration is the one a js-libp2p user would write for a public bootstrap: TCP, noise, yamux, identify,
 * ping, kad-dht in server mode on the public `/ipfs/kad/1.0.0` protocol, libp2p's default connection manager.
 * The one change from kad-dht's defaults is the address mapper: the stock one drops private and loopback
 * addresses (cause 2 of asymmetric discovery), which would make every peer of a loopback test invisible.
 *
 *   node js-libp2p-bootstrap.mjs --port 4001 [--host 127.0.0.1] [--seed text] [--protocol /ipfs/kad/1.0.0]
 *        [--agent-version text] [--admit-agent regex] [--idle-timeout-ms n] [--routable-only]
 *
 * The other options turn the knobs real deployments turn, so that chiral-sim's verdicts can be tested against them
 * without a rust-libp2p or go-libp2p build:
 *   --agent-version    what identify says this node is (default: js-libp2p's own).
 *   --admit-agent      an admission policy: after identify, close the connection of any peer whose agent version
 *                      does not match this regular expression (as apps do with rust-libp2p's identify event).
 *   --idle-timeout-ms  close a connection once it has had no open stream for this long after identify; 0 is
 *                      rust-libp2p ≤ 0.54's default (libp2p-swarm < 0.46), which closes right after identify.
 *                      With this or --admit-agent, like rust-libp2p, it has no per-IP limit on inbound
 *                      connections per second (its clients dial again and again from one loopback address).
 *   --routable-only    keep only routable addresses (kad-dht's stock removePrivateAddressesMapper): on loopback
 *                      its routing table stays empty and it answers every FIND_NODE with no peers.
 *
 * Prints "listening on <multiaddr>" once it accepts connections; stops cleanly on SIGTERM or SIGINT.
 * With --seed the identity (so the peer ID) is derived from the text: the same seed gives the same peer ID.
 */
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'

let values
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      seed: { type: 'string' },
      protocol: { type: 'string', default: '/ipfs/kad/1.0.0' },
      'agent-version': { type: 'string' },
      'admit-agent': { type: 'string' },
      'idle-timeout-ms': { type: 'string' },
      'routable-only': { type: 'boolean', default: false }
    }
  }))
  if (values['idle-timeout-ms'] != null && !/^[0-9]+$/.test(values['idle-timeout-ms'])) throw new Error(`--idle-timeout-ms must be a whole number of milliseconds, not "${values['idle-timeout-ms']}"`)
  if (values['admit-agent'] != null) new RegExp(values['admit-agent'])
} catch (err) {
  process.stderr.write(`js-libp2p-bootstrap: ${err.message}\n`)
  process.exit(2)
}

const privateKey = values.seed == null
  ? undefined
  : await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(values.seed).digest())

const node = await createLibp2p({
  ...(privateKey != null ? { privateKey } : {}),
  ...(values['agent-version'] != null ? { nodeInfo: { userAgent: values['agent-version'] } } : {}),
  addresses: { listen: [`/ip4/${values.host}/tcp/${values.port}`] },
  // A node that drops connections (idle, or not admitted) makes its clients dial again; js-libp2p's default of 5
  // inbound connections per second per IP (which rust-libp2p does not have) would then reset the loopback peers'
  // dials, all from 127.0.0.1, and turn the knob's verdict into "refused".
  ...(values['idle-timeout-ms'] != null || values['admit-agent'] != null ? { connectionManager: { inboundConnectionThreshold: 1_000 } } : {}),
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: values.protocol, clientMode: false, peerInfoMapper: values['routable-only'] ? removePrivateAddressesMapper : passthroughMapper })
  }
})

if (values['admit-agent'] != null) {
  const admitted = new RegExp(values['admit-agent'])
  node.addEventListener('peer:identify', (ev) => {
    const { agentVersion, connection, peerId } = ev.detail
    if (admitted.test(agentVersion ?? '')) return
    console.error(`rejecting ${peerId}: agent "${agentVersion ?? ''}" does not match ${admitted}`)
    void connection.close().catch(() => connection.abort(new Error('agent rejected')))
  })
}

if (values['idle-timeout-ms'] != null) {
  const idleMs = Number(values['idle-timeout-ms'])
  // A connection becomes closable once identify is done on it; from then on it lives only while it carries streams.
  const identified = new WeakSet()
  const idleSince = new WeakMap()
  node.addEventListener('peer:identify', (ev) => { identified.add(ev.detail.connection) })
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const connection of node.getConnections()) {
      if (!identified.has(connection) || connection.status !== 'open') continue
      if (connection.streams.length > 0) { idleSince.delete(connection); continue }
      if (!idleSince.has(connection)) idleSince.set(connection, now)
      if (now - idleSince.get(connection) >= idleMs) void connection.close().catch(() => {})
    }
  }, 5)
  node.addEventListener('stop', () => { clearInterval(sweep) })
}

console.log(`listening on ${node.getMultiaddrs().map(String).join(' ')}`)

let stopping = false
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    node.stop().then(() => process.exit(0), () => process.exit(1))
  })
}
