import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import {
  CommandError, CommandErrorBodySchema, commands,
  type CallOptions, type CommandName, type CommandRequest, type CommandResponse, type NodeHandle
} from '../commands.ts'
import { NodeEventSchema, type NodeEvent, type NodeEventListener } from '../events.ts'
import { ControlHealthSchema, DEFAULT_HEARTBEAT_MS, type ControlHealth } from './server.ts'
import { bearer } from './token.ts'

/**
 * The control channel's client side: a NodeHandle for a node that runs in another process or container.
 * Everything that crosses the wire is checked against the same zod schemas the node answers with, so a runner
 * cannot tell a remote node from an in-process one, except by its latency.
 */

export interface RemoteNodeOptions {
  name: string
  role: 'bootstrap' | 'peer'
  /** The control server's base URL, e.g. `http://127.0.0.1:41234`. */
  url: string
  /** The node's control token (token.ts), sent with every request. */
  token: string
  /** Deadline for one call, default 120 s. A request that carries its own `timeoutMs` gets at least that plus a grace. */
  requestTimeoutMs?: number
  /** How long an event subscription keeps reconnecting without success before it gives up; default `requestTimeoutMs`. */
  reconnectDeadlineMs?: number
  /** An event stream silent for this long is presumed dead and reopened; default three heartbeats (45 s). */
  streamIdleMs?: number
}

export interface SubscribeOptions {
  /** Told when a stream line is unusable or when the subscription gives up reconnecting. */
  onError?: (error: CommandError) => void
}

export interface WaitUntilReadyOptions {
  /** The node's control token: /healthz answers only to it. */
  token: string
  signal?: AbortSignal
  /** Default 30 s. */
  timeoutMs?: number
  /** Default 200 ms. */
  intervalMs?: number
}

const GapSchema = z.object({ gap: z.object({ from: z.number().int(), to: z.number().int(), retention: z.number().int() }) })

const DEFAULT_REQUEST_TIMEOUT_MS = 120_000
/** Room for a node to report its own timeout before ours fires, so the caller sees the node's answer, not ours. */
const TIMEOUT_GRACE_MS = 10_000
const BACKOFF_MIN_MS = 50
const BACKOFF_MAX_MS = 1_000

export class RemoteNode implements NodeHandle, AsyncDisposable {
  readonly name: string
  readonly role: 'bootstrap' | 'peer'
  readonly url: string
  readonly #authorization: string
  readonly #requestTimeoutMs: number
  readonly #reconnectDeadlineMs: number
  readonly #streamIdleMs: number
  readonly #closed = new AbortController()
  readonly #subscriptions = new Set<Promise<void>>()

  constructor (options: RemoteNodeOptions) {
    this.name = options.name
    this.role = options.role
    this.url = options.url.replace(/\/+$/, '')
    this.#authorization = bearer(options.token)
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.#reconnectDeadlineMs = options.reconnectDeadlineMs ?? this.#requestTimeoutMs
    this.#streamIdleMs = options.streamIdleMs ?? 3 * DEFAULT_HEARTBEAT_MS
  }

  /** Polls `/healthz` until a control server answers; resolves with who it is. */
  static async waitUntilReady (url: string, options: WaitUntilReadyOptions): Promise<ControlHealth> {
    const timeoutMs = options.timeoutMs ?? 30_000
    const deadline = AbortSignal.timeout(timeoutMs)
    const signal = anySignal(deadline, options.signal)
    const healthz = `${url.replace(/\/+$/, '')}/healthz`
    let last = 'no answer yet'
    for (;;) {
      try {
        return await probe(healthz, options.token, signal)
      } catch (err) {
        // A wrong token will not become right by waiting.
        if (err instanceof CommandError) throw err
        // The probe cut short by our own deadline says nothing about the server; keep the error before it.
        if (!signal.aborted) last = describe(err)
      }
      if (options.signal?.aborted === true) throw abortedError(`waiting for ${healthz}`, options.signal.reason)
      if (deadline.aborted) throw new CommandError('unavailable', `no control server became ready at ${healthz} within ${timeoutMs} ms; last error: ${last}`)
      await sleep(options.intervalMs ?? 200, undefined, { signal }).catch(() => {})
    }
  }

  async call<C extends CommandName> (command: C, request: CommandRequest<C>, options: CallOptions = {}): Promise<CommandResponse<C>> {
    if (this.#closed.signal.aborted) throw new CommandError('unavailable', `RemoteNode ${this.name} is closed`)
    const timeoutMs = this.#deadlineFor(request)
    const deadline = AbortSignal.timeout(timeoutMs)
    const signal = anySignal(deadline, options.signal, this.#closed.signal)
    const body = encodeRequest(command, request)
    let status: number
    let text: string
    try {
      const res = await fetch(`${this.url}/commands/${encodeURIComponent(command)}`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: this.#authorization }, body, signal
      })
      status = res.status
      text = await res.text()
    } catch (err) {
      if (options.signal?.aborted === true) throw abortedError(`${command} on node ${this.name}`, options.signal.reason)
      if (this.#closed.signal.aborted) throw abortedError(`${command} on node ${this.name}`, this.#closed.signal.reason)
      if (deadline.aborted) throw new CommandError('unavailable', `node ${this.name} at ${this.url} did not answer ${command} within ${timeoutMs} ms`)
      throw new CommandError('unavailable', `node ${this.name} at ${this.url} is not reachable: ${describe(err)}`)
    }
    if (status < 200 || status > 299) throw this.#errorFrom(command, status, text)
    return this.#responseFrom(command, text)
  }

  subscribe (listener: NodeEventListener, from = 0, options: SubscribeOptions = {}): () => void {
    const unsubscribed = new AbortController()
    const signal = anySignal(unsubscribed.signal, this.#closed.signal)
    const done: Promise<void> = this.#follow(listener, from, signal, options.onError)
      .catch(() => {})
      .finally(() => { this.#subscriptions.delete(done) })
    this.#subscriptions.add(done)
    return () => { unsubscribed.abort() }
  }

  /** Ends every subscription and in-flight call; resolves once no stream is left open. */
  async close (): Promise<void> {
    this.#closed.abort(new CommandError('aborted', `RemoteNode ${this.name} was closed`))
    await Promise.allSettled([...this.#subscriptions])
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  #deadlineFor (request: unknown): number {
    const own = (request as { timeoutMs?: unknown } | null | undefined)?.timeoutMs
    return typeof own === 'number' && Number.isFinite(own)
      ? Math.max(this.#requestTimeoutMs, own + TIMEOUT_GRACE_MS)
      : this.#requestTimeoutMs
  }

  #errorFrom (what: string, status: number, text: string): CommandError {
    const body = CommandErrorBodySchema.safeParse(parseJson(text))
    if (body.success) return new CommandError(body.data.error.code, body.data.error.message, body.data.error.field)
    // Not our server's error shape: a proxy, a port that belongs to something else, a crashed node behind a gateway.
    const code = status >= 502 && status <= 504 ? 'unavailable' : 'failed'
    return new CommandError(code, `node ${this.name} at ${this.url} answered ${what} with HTTP ${status}: ${text.slice(0, 200)}`)
  }

  #responseFrom<C extends CommandName> (command: C, text: string): CommandResponse<C> {
    const json = parseJson(text)
    if (json === undefined) throw new CommandError('failed', `node ${this.name} answered ${command} with a body that is not JSON: ${text.slice(0, 200)}`)
    const parsed = (commands[command].response as z.ZodType).safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const field = issue?.path.join('.') ?? ''
      throw new CommandError('failed', `node ${this.name} answered ${command} with an invalid response: ${field === '' ? 'response' : `field "${field}"`}: ${issue?.message ?? 'invalid'}`, field)
    }
    return parsed.data as CommandResponse<C>
  }

  /** Reads the event stream, reopening it from the next unseen seq whenever it drops, until `signal` aborts. */
  async #follow (listener: NodeEventListener, from: number, signal: AbortSignal, onError?: (error: CommandError) => void): Promise<void> {
    let next = from
    let backoff = BACKOFF_MIN_MS
    let failingSince: number | undefined
    let last = 'the stream ended'
    const report = (error: CommandError): void => {
      try { onError?.(error) } catch { /* a faulty error listener must not end the subscription */ }
    }
    const deliver = (event: NodeEvent): void => {
      // Reconnects replay from `next`; the check also guards against a server that replays more than asked.
      if (event.seq < next || signal.aborted) return
      next = event.seq + 1
      try { listener(event) } catch { /* as in EventLog: a faulty subscriber must not stop the stream */ }
    }
    const opened = (): void => {
      failingSince = undefined
      backoff = BACKOFF_MIN_MS
    }
    while (!signal.aborted) {
      try {
        await this.#readStream(next, signal, { deliver, opened, report })
        last = 'the stream ended'
      } catch (err) {
        if (signal.aborted) return
        if (err instanceof CommandError && err.code !== 'unavailable') {
          report(err)
          return
        }
        last = describe(err)
      }
      failingSince ??= Date.now()
      if (Date.now() - failingSince > this.#reconnectDeadlineMs) {
        report(new CommandError('unavailable', `event stream of node ${this.name} at ${this.url} lost at seq ${next}; gave up reconnecting after ${this.#reconnectDeadlineMs} ms: ${last}`))
        return
      }
      await sleep(backoff, undefined, { signal }).catch(() => {})
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)
    }
  }

  async #readStream (from: number, signal: AbortSignal, on: StreamCallbacks): Promise<void> {
    const idle = new AbortController()
    const stream = anySignal(signal, idle.signal)
    let watchdog: NodeJS.Timeout | undefined
    const quiet = (): void => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => { idle.abort(new Error(`no data or heartbeat for ${this.#streamIdleMs} ms`)) }, this.#streamIdleMs)
    }
    quiet()
    try {
      const res = await fetch(`${this.url}/events?from=${from}`, { headers: { accept: 'application/x-ndjson', authorization: this.#authorization }, signal: stream })
      if (!res.ok || res.body == null) {
        const text = await res.text().catch(() => '')
        throw this.#errorFrom('the event stream', res.status, text)
      }
      on.opened()
      await readLines(res.body, stream, quiet, line => { this.#line(line, on) })
    } catch (err) {
      if (idle.signal.aborted && !signal.aborted) throw idle.signal.reason
      throw err
    } finally {
      clearTimeout(watchdog)
    }
  }

  #line (line: string, on: StreamCallbacks): void {
    if (line.trim() === '') return
    const json = parseJson(line)
    if (json === undefined) {
      on.report(new CommandError('failed', `node ${this.name} sent an event line that is not JSON: ${line.slice(0, 200)}`))
      return
    }
    const gap = GapSchema.safeParse(json)
    if (gap.success) {
      // Not a failure of the stream, but data the reader will never see: it must know.
      const { from, to, retention } = gap.data.gap
      on.report(new CommandError('unavailable', `node ${this.name} dropped events ${from}–${to - 1} before they were read (it keeps the last ${retention})`))
      return
    }
    // `{}` is a heartbeat: it only proves the connection is alive.
    if (typeof json === 'object' && json !== null && !Object.hasOwn(json, 'seq')) return
    const event = NodeEventSchema.safeParse(json)
    if (!event.success) {
      const issue = event.error.issues[0]
      on.report(new CommandError('failed', `node ${this.name} sent an invalid event: field "${issue?.path.join('.') ?? ''}": ${issue?.message ?? 'invalid'}`, issue?.path.join('.')))
      return
    }
    on.deliver(event.data)
  }
}

interface StreamCallbacks {
  deliver: (event: NodeEvent) => void
  opened: () => void
  report: (error: CommandError) => void
}

/** `onData` runs for every chunk, partial lines included: any byte proves the connection is alive. */
async function readLines (
  body: ReadableStream<Uint8Array>, signal: AbortSignal, onData: () => void, onLine: (line: string) => void
): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  // fetch's own abort already errors the reader; the listener covers a body that is being read when it fires.
  const cancel = (): void => { reader.cancel(signal.reason).catch(() => {}) }
  signal.addEventListener('abort', cancel, { once: true })
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      onData()
      buffered += decoder.decode(value, { stream: true })
      let newline = buffered.indexOf('\n')
      while (newline >= 0) {
        onLine(buffered.slice(0, newline))
        buffered = buffered.slice(newline + 1)
        newline = buffered.indexOf('\n')
      }
    }
  } finally {
    signal.removeEventListener('abort', cancel)
    reader.releaseLock()
  }
}

async function probe (healthz: string, token: string, signal: AbortSignal): Promise<ControlHealth> {
  const res = await fetch(healthz, { headers: { authorization: bearer(token) }, signal: anySignal(signal, AbortSignal.timeout(2_000)) })
  const text = await res.text()
  if (res.status === 401 || res.status === 403) {
    const body = CommandErrorBodySchema.safeParse(parseJson(text))
    throw new CommandError(res.status === 401 ? 'unauthorized' : 'forbidden', `${healthz} refused the harness (HTTP ${res.status}): ${body.success ? body.data.error.message : text.slice(0, 200)}`)
  }
  const health = ControlHealthSchema.safeParse(parseJson(text))
  if (!res.ok || !health.success) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`)
  return health.data
}

function encodeRequest (command: CommandName, request: unknown): string {
  try {
    return JSON.stringify(request ?? {})
  } catch (err) {
    throw new CommandError('bad-request', `${command}: request is not serialisable as JSON: ${(err as Error).message}`)
  }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function anySignal (...signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined))
}

function abortedError (what: string, reason: unknown): CommandError {
  const error = new CommandError('aborted', `${what} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`)
  error.cause = reason
  return error
}

/** fetch reports every network failure as "fetch failed"; the useful part (ECONNREFUSED, …) is in the cause. */
function describe (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? err.cause : err
  const code = (cause as { code?: unknown }).code
  const message = cause.message !== '' ? cause.message : err.message
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message
}
