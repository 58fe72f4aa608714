import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import { CommandError, commands, dispatch, type CommandErrorCode, type CommandHandlers, type CommandName } from '../commands.ts'
import type { EventLog } from '../events.ts'
import { refuse } from './guard.ts'

/**
 * The control channel's server side: serves a node's command set and event log over HTTP so that the harness can
 * drive a node running in another process or a container exactly as it drives one in process.
 *
 *   POST /commands/:name   JSON request → JSON response, or `{ error: { code, message, field? } }`
 *   GET  /events?from=N    NDJSON: replay from seq N, then live events; `{}` lines are heartbeats; a
 *                          `{"gap":{"from","to","retention"}}` line says events from…to-1 were dropped (the log keeps
 *                          the last EVENT_LOG_RETENTION); at most 32 streams at once (503 beyond)
 *   GET  /healthz          `{ ok: true, name, role }`
 *
 * Every request carries `Authorization: Bearer <token>` (401 otherwise); requests from web pages and Host names
 * other than localhost are refused (403), bodies must be JSON (415). See guard.ts and token.ts.
 */

export interface ControlTarget {
  name: string
  role: 'bootstrap' | 'peer'
  handlers: CommandHandlers
  log: EventLog
}

export interface ServeControlOptions {
  /** The secret every request must carry (token.ts); there is no unauthenticated mode. */
  token: string
  /**
   * Default 127.0.0.1. Loopback or the run's private network only: a container passes 0.0.0.0, which is its own
   * network namespace (the run network and loopback), and the engine publishes the port on the host's loopback.
   */
  host?: string
  /** Default 0: the OS picks a free port, read it back from `ControlServer.port`. */
  port?: number
  /** Aborting closes the server, as `close()` does. */
  signal?: AbortSignal
  /** Default 8 MiB: `shareFile` carries file contents as base64, anything larger is a mistake. */
  maxBodyBytes?: number
  /** Default 15 s: lets a reader tell a silent node from a dead connection (half-open TCP through NAT or Docker). */
  heartbeatMs?: number
  /** Default 32: more concurrent event streams get 503. */
  maxStreams?: number
  /** Default 60 s: a stream whose reader takes no data this long is closed (checked at each heartbeat). */
  stalledStreamMs?: number
}

export interface ControlServer extends AsyncDisposable {
  /** `http://host:port`, with an unspecified listen address (0.0.0.0, ::) replaced by loopback. */
  readonly url: string
  readonly port: number
  readonly listening: boolean
  close (): Promise<void>
}

export const ControlHealthSchema = z.object({ ok: z.literal(true), name: z.string(), role: z.enum(['bootstrap', 'peer']) })
export type ControlHealth = z.infer<typeof ControlHealthSchema>

/** 499 is nginx's "client closed request": the caller gave up, nobody is reading the answer anyway. */
export const httpStatusOf: Readonly<Record<CommandErrorCode, number>> = {
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'unknown-command': 404,
  'not-supported': 409,
  aborted: 499,
  unavailable: 503,
  failed: 500
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
export const DEFAULT_HEARTBEAT_MS = 15_000
/** Event streams one node serves at once: the harness needs one per subscription, a handful per node. */
export const DEFAULT_MAX_STREAMS = 32
/** A stream whose reader has not taken data for this long is closed (the reader resumes from its last seq). */
export const DEFAULT_STALLED_STREAM_MS = 60_000

interface Context {
  target: ControlTarget
  token: string
  host: string
  /** Aborted when the server closes, so that long handlers stop instead of holding close() up. */
  closing: AbortSignal
  streams: Set<ServerResponse>
  maxBodyBytes: number
  heartbeatMs: number
  maxStreams: number
  stalledStreamMs: number
}

export async function serveControl (target: ControlTarget, opts: ServeControlOptions): Promise<ControlServer> {
  opts.signal?.throwIfAborted()
  if (typeof opts.token !== 'string' || opts.token === '') throw new TypeError('serveControl: a token is required')
  const host = opts.host ?? '127.0.0.1'
  const closing = new AbortController()
  const ctx: Context = {
    target,
    token: opts.token,
    host,
    closing: closing.signal,
    streams: new Set(),
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    heartbeatMs: opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    maxStreams: opts.maxStreams ?? DEFAULT_MAX_STREAMS,
    stalledStreamMs: opts.stalledStreamMs ?? DEFAULT_STALLED_STREAM_MS
  }
  const server = createServer((req, res) => {
    route(ctx, req, res).catch((err: unknown) => { lastResort(res, err) })
  })
  await listen(server, opts.port ?? 0, host)
  const port = (server.address() as AddressInfo).port

  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= (async () => {
      opts.signal?.removeEventListener('abort', onAbort)
      closing.abort(new CommandError('unavailable', `node ${target.name} is shutting down its control server`))
      for (const res of ctx.streams) res.end()
      const stopped = new Promise<void>(resolve => { server.close(() => { resolve() }) })
      // Keep-alive sockets and open event streams would otherwise hold close() (and the process) until they time out.
      server.closeAllConnections()
      await stopped
    })()
    await closed
  }
  const onAbort = (): void => { void close() }
  opts.signal?.addEventListener('abort', onAbort, { once: true })

  return {
    url: `http://${urlHost(host)}:${port}`,
    port,
    get listening () { return server.listening },
    close,
    [Symbol.asyncDispose]: close
  }
}

async function listen (server: ReturnType<typeof createServer>, port: number, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function urlHost (host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1'
  if (host === '::') return '[::1]'
  return host.includes(':') ? `[${host}]` : host
}

async function route (ctx: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const refused = refuse(req, { token: ctx.token, boundHost: ctx.host })
  if (refused !== undefined) {
    // The body is discarded unread: an unauthenticated caller gets no work and no memory out of this server.
    req.resume()
    res.setHeader('connection', 'close')
    for (const [name, value] of Object.entries(refused.headers ?? {})) res.setHeader(name, value)
    sendError(res, refused.error, refused.status)
    return
  }
  const [path = '', query = ''] = (req.url ?? '').split('?', 2)
  if (path === '/healthz') {
    if (!allow(req, res, 'GET')) return
    req.resume()
    sendJson(res, 200, { ok: true, name: ctx.target.name, role: ctx.target.role } satisfies ControlHealth)
    return
  }
  if (path === '/events') {
    if (!allow(req, res, 'GET')) return
    req.resume()
    streamEvents(ctx, res, new URLSearchParams(query))
    return
  }
  if (path.startsWith('/commands/')) {
    if (!allow(req, res, 'POST')) return
    await runCommand(ctx, req, res, path.slice('/commands/'.length))
    return
  }
  req.resume()
  sendError(res, new CommandError('bad-request', `no route ${req.method ?? ''} ${path}; routes: POST /commands/:name, GET /events?from=N, GET /healthz`), 404)
}

function allow (req: IncomingMessage, res: ServerResponse, method: 'GET' | 'POST'): boolean {
  if (req.method === method) return true
  req.resume()
  res.setHeader('allow', method)
  sendError(res, new CommandError('bad-request', `${req.method ?? ''} is not allowed here; use ${method}`), 405)
  return false
}

// ---------------------------------------------------------------------------------------------------- commands

async function runCommand (ctx: Context, req: IncomingMessage, res: ServerResponse, rawName: string): Promise<void> {
  const disconnected = new AbortController()
  // 'close' before the response is finished means the caller went away: the handler should stop working for nobody.
  res.once('close', () => {
    if (!res.writableFinished) disconnected.abort(new CommandError('aborted', 'the caller disconnected'))
  })
  const signal = AbortSignal.any([disconnected.signal, ctx.closing])

  const body = await readBody(req, ctx.maxBodyBytes)
  if (!body.ok) {
    sendError(res, body.error, body.status)
    return
  }
  let name: string
  let request: unknown
  try {
    name = decodeCommandName(rawName)
    request = parseJsonBody(body.text)
  } catch (err) {
    sendError(res, asCommandError(err, signal))
    return
  }
  try {
    const result = await dispatch(ctx.target.role, ctx.target.handlers, name as CommandName, request, { signal })
    sendResult(res, name as CommandName, result)
  } catch (err) {
    sendError(res, asCommandError(err, signal))
  }
}

function decodeCommandName (raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new CommandError('bad-request', `command name "${raw}" is not valid percent-encoding`)
  }
}

function parseJsonBody (text: string): unknown {
  // An empty body means "no arguments", which commands without a request object rely on.
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new CommandError('bad-request', `request body is not valid JSON: ${(err as Error).message}`)
  }
}

type Body = { ok: true, text: string } | { ok: false, status: number, error: CommandError }

async function readBody (req: IncomingMessage, limit: number): Promise<Body> {
  const tooLarge = (): Body => {
    // The rest of the upload is discarded, not read into memory, so the caller still gets to read the 413.
    req.resume()
    return { ok: false, status: 413, error: new CommandError('bad-request', `request body exceeds the ${limit}-byte limit`) }
  }
  if (Number(req.headers['content-length'] ?? 0) > limit) return tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > limit) return tooLarge()
      chunks.push(chunk as Buffer)
    }
  } catch (err) {
    return { ok: false, status: 499, error: new CommandError('aborted', `request body was cut off: ${(err as Error).message}`) }
  }
  const text = Buffer.concat(chunks).toString('utf8')
  return { ok: true, text }
}

function sendResult (res: ServerResponse, command: CommandName, result: unknown): void {
  const checked = (commands[command].response as z.ZodType).safeParse(result)
  if (!checked.success) {
    // The node answered something its own schema rejects: a bug in the node, reported with the field to look at.
    const issue = checked.error.issues[0]
    const field = issue?.path.join('.') ?? ''
    const where = field === '' ? 'the response' : `field "${field}"`
    sendError(res, new CommandError('failed', `node bug: ${command} returned an invalid response: ${where}: ${issue?.message ?? 'invalid'}`, field))
    return
  }
  sendJson(res, 200, checked.data)
}

/** Anything a handler throws becomes a CommandError; a message crosses the wire, a stack never does. */
function asCommandError (err: unknown, signal: AbortSignal): CommandError {
  if (err instanceof CommandError) return err
  if (signal.aborted && signal.reason instanceof CommandError) {
    return new CommandError(signal.reason.code, signal.reason.message)
  }
  if (err instanceof Error) {
    const prefix = err.name === 'Error' || err.name === '' ? '' : `${err.name}: `
    return new CommandError('failed', `${prefix}${err.message}`)
  }
  return new CommandError('failed', `non-Error thrown: ${safeString(err)}`)
}

function safeString (value: unknown): string {
  try {
    return typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

function sendError (res: ServerResponse, error: CommandError, status = httpStatusOf[error.code]): void {
  const body: { error: { code: CommandErrorCode, message: string, field?: string } } = { error: { code: error.code, message: error.message } }
  if (error.field !== undefined) body.error.field = error.field
  sendJson(res, status, body)
}

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return
  let text: string
  try {
    text = JSON.stringify(body)
  } catch (err) {
    status = 500
    text = JSON.stringify({ error: { code: 'failed', message: `node bug: response is not serialisable: ${(err as Error).message}` } })
  }
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store'
  })
  res.end(text)
}

/** A bug in this file must cost one request, never the node. */
function lastResort (res: ServerResponse, err: unknown): void {
  if (!res.headersSent && !res.destroyed) {
    sendError(res, new CommandError('failed', `control server error: ${err instanceof Error ? err.message : safeString(err)}`))
  } else {
    res.destroy()
  }
}

// ------------------------------------------------------------------------------------------------------ events

function streamEvents (ctx: Context, res: ServerResponse, query: URLSearchParams): void {
  const raw = query.get('from') ?? '0'
  const from = /^\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(from)) {
    sendError(res, new CommandError('bad-request', `query "from" must be a non-negative integer, got "${raw}"`, 'from'))
    return
  }
  if (ctx.streams.size >= ctx.maxStreams) {
    res.setHeader('retry-after', '5')
    sendError(res, new CommandError('unavailable', `node ${ctx.target.name} already serves ${ctx.streams.size} event streams, its limit; close one (one subscription per reader is enough)`), 503)
    return
  }
  const log = ctx.target.log
  res.writeHead(200, {
    'content-type': 'application/x-ndjson',
    'cache-control': 'no-store',
    'x-chiral-first-seq': String(log.first),
    'x-chiral-retention': String(log.retention)
  })
  // Headers go out now, so a reader knows it is connected even before the node has anything to say.
  res.flushHeaders()

  // The log is the only buffer: the stream holds a cursor into it and writes only while the socket takes data, so a
  // reader that does not read costs one socket buffer, not a copy of the log (100 such readers used to cost GBs).
  let next = from
  let blockedSince: number | undefined
  const pump = (): void => {
    if (res.writableEnded || res.destroyed) return
    while (true) {
      if (next < log.first) {
        // Dropped while this reader lagged (or before it asked): say so, with the range, rather than skip silently.
        res.write(`${JSON.stringify({ gap: { from: next, to: log.first, retention: log.retention } })}\n`)
        next = log.first
      }
      const event = log.get(next)
      if (event === undefined) break
      next++
      if (!res.write(`${JSON.stringify(event)}\n`)) {
        blockedSince ??= Date.now()
        return
      }
    }
    blockedSince = undefined
  }
  res.on('drain', pump)
  // EventLog.emit is synchronous, so the subscription sees every event after the first pump; the cursor dedups.
  const unsubscribe = log.subscribe(() => { if (!res.writableNeedDrain) pump() })
  pump()
  const heartbeat = setInterval(() => {
    if (res.writableEnded) return
    if (res.writableNeedDrain) {
      // A reader this long without reading is stuck: its slot goes to someone who reads; it can resume from its seq.
      if (blockedSince !== undefined && Date.now() - blockedSince > ctx.stalledStreamMs) res.destroy()
      return
    }
    res.write('{}\n')
  }, ctx.heartbeatMs)
  heartbeat.unref()
  ctx.streams.add(res)
  res.once('close', () => {
    unsubscribe()
    clearInterval(heartbeat)
    ctx.streams.delete(res)
  })
}
