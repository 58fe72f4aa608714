import net from 'node:net'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify as identifyService, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import type { IdentifyResult, Stream } from '@libp2p/interface'
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
  /**
   * Ping, then identify: what a black-box node says about itself (agent, protocols). Needs `identify: true`.
   * Never throws; `identified` is undefined when the node answered ping but not identify in time.
   */
  probe(address: string, signal: AbortSignal, holdProtocol?: string): Promise<ProbeResult & { identified?: Identified }>
  close(): Promise<void>
}

export interface Identified { agentVersion: string | undefined, protocols: string[] }

/** How long a probe waits for libp2p's own identify after the ping answered. */
const IDENTIFY_WAIT_MS = 2_000

export interface PingerOptions {
  /** The bootstrap's ping protocol prefix (NodeConfig.dht.pingProtocolPrefix); default "ipfs". */
  protocolPrefix?: string
  /** Also run identify (for probe()). Off for the supervisor, whose check must not depend on identify. */
  identify?: boolean
}

/**
 * A listen-less libp2p node that speaks only ping (and identify when asked): the "tiny client" of the plan's
 * check 3. It runs no DHT, so no node ever admits it to a routing table and probing changes nothing the run
 * measures.
 */
export async function createPinger (options: PingerOptions = {}): Promise<Pinger> {
  const node: Libp2p<{ ping: Ping, identify?: Identify }> = await createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      ping: ping({ protocolPrefix: options.protocolPrefix ?? 'ipfs' }),
      ...(options.identify === true ? { identify: identifyService() } : {})
    }
  })
  let closed: Promise<void> | undefined
  // One probe at a time: each ends by hanging up, which would cut a concurrent ping to the same peer mid-flight.
  let queue: Promise<unknown> = Promise.resolve()
  const close = async (): Promise<void> => {
    closed ??= Promise.resolve(node.stop())
    await closed
  }
  const queued = async <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn)
    queue = run.catch(() => {})
    return await run
  }
  return {
    async ping (address: string, signal: AbortSignal): Promise<ProbeResult> {
      return await queued(async () => await pingOnce(address, signal, false))
    },
    async probe (address: string, signal: AbortSignal, holdProtocol?: string) {
      if (node.services.identify == null) throw new Error('createPinger: probe() needs { identify: true }')
      return await queued(async () => await pingOnce(address, signal, true, holdProtocol))
    },
    close,
    [Symbol.asyncDispose]: close
  }

  async function pingOnce (address: string, signal: AbortSignal, withIdentify: boolean, holdProtocol?: string): Promise<ProbeResult & { identified?: Identified }> {
    // Waiting in the queue may have used up the caller's deadline.
    if (signal.aborted) return { ok: false, detail: 'no ping answer in time' }
    const ma = multiaddr(address)
    // libp2p identifies every new connection by itself, and the remote refuses a second identify stream while that
    // one runs: so listen for its answer from the start rather than asking again.
    const target = peerIdOfAddr(address)
    let identified: Identified | undefined
    let onIdentified: (() => void) | undefined
    const onIdentify = (ev: CustomEvent<IdentifyResult>): void => {
      if (ev.detail.peerId.toString() !== target) return
      identified = { agentVersion: ev.detail.agentVersion, protocols: [...ev.detail.protocols].sort() }
      onIdentified?.()
    }
    if (withIdentify) node.addEventListener('peer:identify', onIdentify)
    let held: Stream | undefined
    try {
      // A stream the node counts as activity, open while the ping runs: rust-libp2p (idle timeout 0) closes a
      // connection right after identify however many pings are in flight, not while a DHT stream is open.
      if (holdProtocol != null) held = await node.dial(ma, { signal }).then(async c => await c.newStream(holdProtocol, { signal })).catch(() => undefined)
      // A fresh dial every time: a connection kept from the last check would hide a bootstrap that stopped accepting.
      const latencyMs = await node.services.ping.ping(ma, { signal })
      const result = { ok: true, detail: `ping ${latencyMs.toFixed(1)} ms`, latencyMs }
      if (!withIdentify) return result
      if (identified == null) {
        await new Promise<void>(resolve => {
          onIdentified = resolve
          const stop = AbortSignal.any([signal, AbortSignal.timeout(IDENTIFY_WAIT_MS)])
          stop.addEventListener('abort', () => { resolve() }, { once: true })
        })
      }
      // A remote that closed the connection before identify finished: ask on a connection of our own.
      identified ??= await identifyOver(ma, signal).catch(() => undefined)
      return { ...result, ...(identified != null ? { identified } : {}) }
    } catch (err) {
      if (signal.aborted) return { ok: false, detail: 'no ping answer in time' }
      // The handshake succeeded, so the node is up; it dropped the connection before the ping's answer.
      if ((err instanceof Event && err.type === 'close') || ['UnexpectedEOFError', 'ConnectionClosedError', 'ConnectionClosingError'].includes((err as Error)?.name)) {
        // A node that answered identify runs libp2p: for a probe asked to identify it, that is the answer, even
        // when it closes every connection right after identify (rust-libp2p ≤ 0.54 with nothing to keep it open).
        if (withIdentify && identified != null) {
          return { ok: true, detail: `answered identify, then closed the connection before answering the ping (${describeError(err)}): it closes connections right after identify`, identified }
        }
        return { ok: false, detail: `it accepted the connection, then closed it before answering the ping (${describeError(err)}): it closes connections right after identify?` }
      }
      return { ok: false, detail: describeError(err) }
    } finally {
      await held?.close().catch(() => { held?.abort(new Error('probe done')) })
      node.removeEventListener('peer:identify', onIdentify)
      if (target != null) await node.hangUp(ma).catch(() => {})
    }
  }

  /** Identify over the connection the ping opened (libp2p also runs it on its own; asking again is cheap and certain). */
  async function identifyOver (ma: ReturnType<typeof multiaddr>, signal: AbortSignal): Promise<Identified> {
    const connection = await node.dial(ma, { signal })
    const result = await node.services.identify!.identify(connection, { signal })
    return { agentVersion: result.agentVersion, protocols: [...result.protocols].sort() }
  }
}
