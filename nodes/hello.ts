import { lpStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import { z } from 'zod'
import type { ChiralLibp2p } from './libp2p.ts'

/**
 * The bootstrap's greeting. A full bootstrap must say "busy" in a way the client can categorize (the plan retries
 * a busy bootstrap with a longer timeout); a reset socket would be indistinguishable from a crash. A bootstrap that
 * does not speak this protocol (an external one) is simply not asked.
 */
export const HELLO_PROTOCOL = '/chiral/bootstrap/1.0.0'

export const HelloAnswerSchema = z.object({
  status: z.enum(['ok', 'busy']),
  /** Peers connected to the bootstrap, the asker included: the plan's peer count via bootstrap. */
  peers: z.number().int(),
  maxPeers: z.number().int(),
  /**
   * Connected peers other than the asker that announce the bootstrap's DHT protocol: whether anyone else is online
   * to be discovered (probes and other non-DHT clients are not). Absent in answers of older bootstraps.
   */
  others: z.number().int().optional()
})
export type HelloAnswer = z.infer<typeof HelloAnswerSchema>

const BUSY_GRACE_MS = 2_000

export class BusyError extends Error {
  override readonly name = 'BusyError'
  readonly code = 'busy'
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

async function writeJson (stream: Stream, value: unknown, signal?: AbortSignal): Promise<void> {
  await lpStream(stream).write(encoder.encode(JSON.stringify(value)), { signal })
}

export async function handleHello (libp2p: ChiralLibp2p, maxPeers: number, dhtProtocol: string, onBusy: (peerId: string, peers: number) => void): Promise<void> {
  // The connected peers that announce the DHT protocol, kept by libp2p's registrar as they identify and disconnect.
  // Counting them per hello from the peer store decoded a record per connected peer: O(N) per join, O(N²) for a
  // population, which made a 1000-peer bootstrap spend its time answering hellos.
  const dhtPeers = new Set<string>()
  await libp2p.register(dhtProtocol, {
    onConnect: peer => { dhtPeers.add(peer.toString()) },
    onDisconnect: peer => { dhtPeers.delete(peer.toString()) }
  })
  await libp2p.handle(HELLO_PROTOCOL, async (stream: Stream, connection: Connection) => {
    const peers = libp2p.getPeers().length
    const status = peers > maxPeers ? 'busy' : 'ok'
    const asker = connection.remotePeer.toString()
    const others = dhtPeers.size - (dhtPeers.has(asker) ? 1 : 0)
    try {
      await writeJson(stream, { status, peers, maxPeers, others } satisfies HelloAnswer, AbortSignal.timeout(5_000))
      await stream.close()
    } catch {
      stream.abort(new Error('hello failed'))
    }
    if (status === 'busy') {
      onBusy(connection.remotePeer.toString(), peers)
      // The client hangs up once it has read the answer; closing at once would race that read and turn "busy"
      // into a reset. A client that stays is dropped after a grace period.
      setTimeout(() => { void connection.close().catch(() => {}) }, BUSY_GRACE_MS).unref()
    }
  })
}

/** Asks a connected bootstrap for its status; null when it does not speak the protocol. */
export async function askHello (connection: Connection, signal: AbortSignal): Promise<HelloAnswer | null> {
  let stream: Stream
  try {
    stream = await connection.newStream(HELLO_PROTOCOL, { signal })
  } catch (err) {
    if ((err as Error).name === 'UnsupportedProtocolError') return null
    throw err
  }
  try {
    const bytes = await lpStream(stream).read({ signal })
    return HelloAnswerSchema.parse(JSON.parse(decoder.decode(bytes.subarray())))
  } finally {
    await stream.close().catch(() => {})
  }
}
