import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { CommandError } from './commands.ts'
import type { NodeContext } from './context.ts'
import { getProviderRecords, provide } from './discovery.ts'
import { deadline, describeError } from './util.ts'

/** Plan Test 3, phase 4: share a file, find its provider through the DHT, download it, check its hash. */
export const FILE_PROTOCOL = '/chiral/file/1.0.0'
const CHUNK = 64 * 1024
const MAX_FILE = 64 * 1024 * 1024
/**
 * What a node keeps in memory for sharing: a test fixture's worth, not a file server's. Without a cap, repeated
 * shareFile calls grew a node's RSS without bound (12 × 5 MiB: +234 MB, never released).
 */
export const MAX_SHARED_FILES = 64
export const MAX_SHARED_BYTES = 32 * 1024 * 1024

const RequestSchema = z.object({ cid: z.string() })
const HeaderSchema = z.object({ ok: z.boolean(), size: z.number().int().min(0).max(MAX_FILE).optional(), error: z.string().optional() })

interface SharedFile { cid: string, name: string, bytes: Uint8Array, sha256: string }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class FileStore {
  readonly #ctx: NodeContext
  readonly #files = new Map<string, SharedFile>()

  constructor (ctx: NodeContext) {
    this.#ctx = ctx
  }

  cids (): string[] {
    return [...this.#files.keys()]
  }

  async start (): Promise<void> {
    await this.#ctx.libp2p.handle(FILE_PROTOCOL, async (stream: Stream) => { await this.#serve(stream) })
  }

  async share (name: string, bytes: Uint8Array, signal?: AbortSignal): Promise<{ cid: string, name: string, size: number, sha256: string }> {
    const cid = CID.create(1, raw.code, await sha256.digest(bytes)).toString()
    if (!this.#files.has(cid)) this.#checkRoom(bytes.length)
    const file = { cid, name, bytes, sha256: createHash('sha256').update(bytes).digest('hex') }
    this.#files.set(cid, file)
    this.#ctx.log.emit({ type: 'file:shared', cid, name, size: bytes.length })
    await provide(this.#ctx, cid, signal)
    return { cid, name, size: bytes.length, sha256: file.sha256 }
  }

  /** Bytes kept for sharing now. */
  get sharedBytes (): number {
    let total = 0
    for (const file of this.#files.values()) total += file.bytes.length
    return total
  }

  #checkRoom (size: number): void {
    if (this.#files.size >= MAX_SHARED_FILES) {
      throw new CommandError('bad-request', `this node already shares ${this.#files.size} files, its limit (${MAX_SHARED_FILES}); shared files stay in memory for the node's lifetime`, 'contentBase64')
    }
    const used = this.sharedBytes
    if (used + size > MAX_SHARED_BYTES) {
      throw new CommandError('bad-request', `sharing ${size} more bytes would exceed this node's ${MAX_SHARED_BYTES}-byte limit for shared files (${used} bytes shared in ${this.#files.size} files); shared files stay in memory for the node's lifetime`, 'contentBase64')
    }
  }

  async download (cid: string, provider: string | undefined, outer?: AbortSignal): Promise<{
    success: boolean, cid: string, provider?: string, size?: number, hashVerified: boolean, durationMs: number, error?: string
  }> {
    const started = Date.now()
    const self = this.#ctx.libp2p.peerId.toString()
    const providers = provider != null ? [provider] : (await getProviderRecords(this.#ctx, cid, outer)).filter(p => p !== self)
    this.#ctx.log.emit({ type: 'file:found', cid, providers })
    const errors: string[] = []
    for (const from of providers) {
      try {
        const bytes = await this.#fetch(from, cid, outer)
        const digest = await sha256.digest(bytes)
        const hashVerified = CID.parse(cid).multihash.bytes.every((b, i) => b === digest.bytes[i])
        this.#ctx.log.emit({ type: 'file:downloaded', cid, provider: from, success: hashVerified, hashVerified })
        if (hashVerified) return { success: true, cid, provider: from, size: bytes.length, hashVerified, durationMs: Date.now() - started }
        errors.push(`${from}: content does not match the CID`)
      } catch (err) {
        errors.push(`${from}: ${describeError(err)}`)
      }
    }
    const error = providers.length === 0 ? 'no provider found through the DHT' : errors.join('; ')
    this.#ctx.log.emit({ type: 'file:downloaded', cid, success: false, hashVerified: false, error })
    return { success: false, cid, hashVerified: false, durationMs: Date.now() - started, error }
  }

  async #fetch (provider: string, cid: string, outer?: AbortSignal): Promise<Uint8Array> {
    const { signal } = deadline(this.#ctx.timing.peerDialTimeoutMs, AbortSignal.any([this.#ctx.stopSignal, ...(outer != null ? [outer] : [])]))
    const stream = await this.#ctx.libp2p.dialProtocol(peerIdFromString(provider), FILE_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: CHUNK + 1024 })
      await lp.write(encoder.encode(JSON.stringify({ cid })), { signal })
      const header = HeaderSchema.parse(JSON.parse(decoder.decode((await lp.read({ signal })).subarray())))
      if (!header.ok || header.size == null) throw new Error(header.error ?? 'provider refused')
      const out = new Uint8Array(header.size)
      let offset = 0
      while (offset < header.size) {
        const chunk = (await lp.read({ signal })).subarray()
        out.set(chunk, offset)
        offset += chunk.length
      }
      return out
    } finally {
      await stream.close().catch(() => {})
    }
  }

  async #serve (stream: Stream): Promise<void> {
    const signal = AbortSignal.timeout(this.#ctx.timing.peerDialTimeoutMs)
    const lp = lpStream(stream, { maxDataLength: CHUNK + 1024 })
    try {
      const request = RequestSchema.parse(JSON.parse(decoder.decode((await lp.read({ signal })).subarray())))
      const file = this.#files.get(request.cid)
      if (file == null) {
        await lp.write(encoder.encode(JSON.stringify({ ok: false, error: 'not shared here' })), { signal })
      } else {
        await lp.write(encoder.encode(JSON.stringify({ ok: true, size: file.bytes.length })), { signal })
        for (let i = 0; i < file.bytes.length; i += CHUNK) await lp.write(file.bytes.subarray(i, i + CHUNK), { signal })
      }
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }
}
