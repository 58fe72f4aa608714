import net from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { describeError, peerIdOfAddr } from '../util.ts'
import type { ProbeResult } from './supervisor.ts'

/** Check 2: a TCP connect, as `ss -tln` would see it but from outside, so it also works across a port mapping. */
export async function probePort (host: string, port: number, signal: AbortSignal): Promise<ProbeResult> {
  signal.throwIfAborted()
  return await new Promise<ProbeResult>(resolve => {
    const socket = net.connect({ host, port })
    const done = (result: ProbeResult): void => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(result)
    }
    const onAbort = (): void => { done({ ok: false, detail: `${host}:${port} did not accept a connection in time` }) }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => { done({ ok: true, detail: `${host}:${port} accepts connections` }) })
    socket.once('error', (err: NodeJS.ErrnoException) => { done({ ok: false, detail: `${host}:${port}: ${err.code ?? err.message}` }) })
  })
}

/** Host and TCP port of a multiaddr such as /ip4/127.0.0.1/tcp/4001/p2p/…, for the port check. */
export function tcpHostPort (address: string): { host: string, port: number } {
  const components = multiaddr(address).getComponents()
  const host = components.find(c => ['ip4', 'ip6', 'dns4', 'dns6', 'dns'].includes(c.name))?.value
  const port = Number(components.find(c => c.name === 'tcp')?.value)
  if (host == null || !Number.isInteger(port)) throw new Error(`not a TCP multiaddr: ${address}`)
  return { host, port }
}

export interface Pinger extends AsyncDisposable {
  /** Check 3: dials `address` (with /p2p/), pings it once, hangs up. Never throws. */
  ping(address: string, signal: AbortSignal): Promise<ProbeResult>
  close(): Promise<void>
}

export interface PingerOptions {
  /** The bootstrap's ping protocol prefix (NodeConfig.dht.pingProtocolPrefix); default "ipfs". */
  protocolPrefix?: string
}

/**
 * A listen-less libp2p node that speaks only ping: the "tiny client" of the plan's check 3. It runs no DHT and no
 * identify, so the bootstrap never admits it to a routing table and probing changes nothing the run measures.
 */
export async function createPinger (options: PingerOptions = {}): Promise<Pinger> {
  const node: Libp2p<{ ping: Ping }> = await createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping({ protocolPrefix: options.protocolPrefix ?? 'ipfs' }) }
  })
  let closed: Promise<void> | undefined
  // One ping at a time: each ends by hanging up, which would cut a concurrent ping to the same peer mid-flight.
  let queue: Promise<unknown> = Promise.resolve()
  const close = async (): Promise<void> => {
    closed ??= Promise.resolve(node.stop())
    await closed
  }
  return {
    async ping (address: string, signal: AbortSignal): Promise<ProbeResult> {
      const run = queue.then(async () => await pingOnce(address, signal))
      queue = run.catch(() => {})
      return await run
    },
    close,
    [Symbol.asyncDispose]: close
  }

  async function pingOnce (address: string, signal: AbortSignal): Promise<ProbeResult> {
    // Waiting in the queue may have used up the caller's deadline.
    if (signal.aborted) return { ok: false, detail: 'no ping answer in time' }
    const ma = multiaddr(address)
    try {
      // A fresh dial every time: a connection kept from the last check would hide a bootstrap that stopped accepting.
      const latencyMs = await node.services.ping.ping(ma, { signal })
      return { ok: true, detail: `ping ${latencyMs.toFixed(1)} ms`, latencyMs }
    } catch (err) {
      return { ok: false, detail: signal.aborted ? 'no ping answer in time' : describeError(err) }
    } finally {
      if (peerIdOfAddr(address) != null) await node.hangUp(ma).catch(() => {})
    }
  }
}
