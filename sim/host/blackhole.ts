import net from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ConnectionFailedError } from '@libp2p/interface'
import type { ClearableSignal, Listener, MultiaddrConnection, Upgrader } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { holdTcp } from './tcp-blackhole.ts'

/**
 * The plan's Test 2, "bootstrap completely down / hung": an address that accepts a connection and then never says a
 * word. A closed port fails in milliseconds; only a listener that holds the socket makes a dialer wait for its own
 * deadline, which is what the plan's timeout handling has to survive.
 */
export interface Blackhole {
  /** Ends in /p2p/<random Ed25519 peer ID>, so it is indistinguishable from a real bootstrap address. */
  readonly multiaddr: string
  /** Drops every held connection and stops listening. Idempotent. */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

export interface BlackholeOptions {
  transport: 'memory' | 'tcp'
  /** Memory: the listen name (`/memory/<name>`), process-global, so it must be unique. TCP: only a label. */
  name: string
  /** TCP only; default 127.0.0.1. */
  host?: string
  /** TCP only; default 0 (any free port). */
  port?: number
}

export async function startBlackhole (opts: BlackholeOptions): Promise<Blackhole> {
  // A fresh identity per blackhole: a real-looking /p2p/ suffix lets the dialer get as far as the security handshake.
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return opts.transport === 'tcp'
    ? await startTcp(opts.host ?? '127.0.0.1', opts.port ?? 0, peerId.toString())
    : await startMemory(opts.name, peerId)
}

async function startTcp (host: string, port: number, peerId: string): Promise<Blackhole> {
  const { address, close } = await holdTcp(host, port)
  const family = net.isIPv6(address.address) ? 'ip6' : 'ip4'
  return disposable(`/${family}/${address.address}/tcp/${address.port}/p2p/${peerId}`, close)
}

async function startMemory (name: string, peerId: ReturnType<typeof peerIdFromPrivateKey>): Promise<Blackhole> {
  const held = new Set<MultiaddrConnection>()
  const transport = memory()({ peerId, logger: defaultLogger() })
  const listener: Listener = transport.createListener({ upgrader: silentUpgrader(held) })
  await listener.listen(multiaddr(`/memory/${name}`))
  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= (async () => {
      for (const maConn of held) maConn.abort(new ConnectionFailedError('blackhole closed'))
      held.clear()
      // Also aborts the listener's shutdown signal, which settles every pending upgradeInbound below.
      await listener.close()
    })()
    await closed
  }
  return disposable(`/memory/${name}/p2p/${peerId.toString()}`, close)
}

/**
 * An upgrader that takes every inbound connection and never upgrades it: the dialer's multistream-select greeting
 * goes unanswered. The listener passes its shutdown signal, so the pending upgrade ends when the listener closes.
 */
function silentUpgrader (held: Set<MultiaddrConnection>): Upgrader {
  return {
    async upgradeInbound (maConn: MultiaddrConnection, opts: { signal?: AbortSignal }): Promise<void> {
      held.add(maConn)
      await new Promise<never>((_resolve, reject) => {
        const signal = opts.signal
        if (signal == null) return
        if (signal.aborted) { reject(signal.reason); return }
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      }).finally(() => { held.delete(maConn) })
    },
    async upgradeOutbound (): Promise<never> {
      throw new Error('a blackhole never dials')
    },
    createInboundAbortSignal (signal: AbortSignal): ClearableSignal {
      return Object.assign(AbortSignal.any([signal]), { clear: () => {} })
    },
    getStreamMuxers: () => new Map(),
    getConnectionEncrypters: () => new Map()
  }
}

function disposable (addr: string, close: () => Promise<void>): Blackhole {
  return { multiaddr: addr, close, [Symbol.asyncDispose]: close }
}
