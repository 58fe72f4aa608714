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
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
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
      protocol: { type: 'string', default: '/ipfs/kad/1.0.0' }
    }
  }))
} catch (err) {
  process.stderr.write(`js-libp2p-bootstrap: ${err.message}\n`)
  process.exit(2)
}

const privateKey = values.seed == null
  ? undefined
  : await generateKeyPairFromSeed('Ed25519', createHash('sha256').update(values.seed).digest())

const node = await createLibp2p({
  ...(privateKey != null ? { privateKey } : {}),
  addresses: { listen: [`/ip4/${values.host}/tcp/${values.port}`] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: values.protocol, clientMode: false, peerInfoMapper: passthroughMapper })
  }
})

console.log(`listening on ${node.getMultiaddrs().map(String).join(' ')}`)

let stopping = false
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    node.stop().then(() => process.exit(0), () => process.exit(1))
  })
}
