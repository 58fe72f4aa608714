import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Toxiproxy } from 'toxiproxy-node-client'
import { toxiproxyRequest } from './api.ts'
import { freePort } from '../../nodes/free-port.ts'
import { goBuildVersion, parsePrometheusText } from './metrics.ts'

/**
 * The Toxiproxy server every fault goes through: either one this process starts from a local binary, or an
 * existing one named by TOXIPROXY_URL. Either way the caller gets the same handle and disposes it the same way.
 */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BINARY_NAME = 'toxiproxy-server'
export const REPO_BINARY = path.join(REPO_ROOT, '.toxiproxy', 'bin', BINARY_NAME)

const DEFAULT_START_TIMEOUT_MS = 10_000
const DEFAULT_URL_TIMEOUT_MS = 5_000
const DEFAULT_KILL_TIMEOUT_MS = 3_000
/** After SIGKILL the kernel reaps at once; this only bounds the wait for Node to see the exit. */
const SIGKILL_WAIT_MS = 2_000
const POLL_INTERVAL_MS = 50
/** Only a tail of the server's log is kept, for error messages; the rest is drained so its pipe never fills. */
const LOG_TAIL_LINES = 40

export interface ToxiproxyServer extends AsyncDisposable {
  /** API base URL without a trailing slash, e.g. http://127.0.0.1:40123. */
  readonly url: string
  /** "2.12.0"; "git" only for a go-installed binary whose build info could not be read. */
  readonly version: string
  readonly client: Toxiproxy
  /** Proxies this harness created on the server: the only ones dispose may remove from a shared server. */
  readonly createdProxies: Set<string>
  readonly mode: 'spawned' | 'external'
  /** The server's pid when this process started it. */
  readonly pid: number | null
  /** Whether /metrics answers; the byte counters need it (and a server started with -proxy-metrics). */
  readonly metricsEnabled: boolean
  close (): Promise<void>
}

export interface StartToxiproxyOptions {
  /** Aborts the start-up (the half-started server is killed); it does not stop a server that is up. */
  signal?: AbortSignal
  /** Binary to run; overrides TOXIPROXY_URL and the search of findToxiproxyBinary(). */
  binary?: string
  /** Use this running server instead of starting one; overrides TOXIPROXY_URL. */
  url?: string
  /** API port for a spawned server (default: a free one). Fails instead of retrying when it is taken. */
  port?: number
  /** Deadline for a spawned server's API to answer (default 10 s) or for TOXIPROXY_URL to answer (default 5 s). */
  startTimeoutMs?: number
  /** Grace between SIGTERM and SIGKILL on close (default 3 s). */
  killTimeoutMs?: number
}

export class ToxiproxyUnavailableError extends Error {
  /** Where the binary was looked for, in order. */
  readonly searched: string[]

  constructor (detail: string, searched: string[] = []) {
    super(
      `No Toxiproxy server is available: ${detail}. chiral-sim injects its network faults (bootstrap down, slow, ` +
      'overloaded) through a real Toxiproxy 2.12 server, so it cannot run fault scenarios without one. Run ' +
      '`bash scripts/setup-toxiproxy.sh` (needs Go >= 1.23) to build Toxiproxy 2.12.0 into .toxiproxy/bin/, or set ' +
      'TOXIPROXY_URL=http://127.0.0.1:8474 to use a Toxiproxy server that is already running ' +
      '(TOXIPROXY_SERVER=/path/to/toxiproxy-server selects a specific binary).'
    )
    this.name = 'ToxiproxyUnavailableError'
    this.searched = searched
  }
}

function isExecutableFile (file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

function locateBinary (): { binary: string | null, searched: string[], detail: string } {
  const fromEnv = process.env.TOXIPROXY_SERVER
  if (fromEnv != null && fromEnv !== '') {
    // An explicit choice that is wrong is reported, not silently replaced by another binary found elsewhere.
    const resolved = path.resolve(fromEnv)
    return isExecutableFile(resolved)
      ? { binary: resolved, searched: [`TOXIPROXY_SERVER=${fromEnv}`], detail: '' }
      : { binary: null, searched: [`TOXIPROXY_SERVER=${fromEnv}`], detail: `TOXIPROXY_SERVER=${fromEnv} is not an executable file` }
  }
  const searched: string[] = []
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, BINARY_NAME)
    if (isExecutableFile(candidate)) return { binary: candidate, searched: [...searched, `${BINARY_NAME} on PATH`], detail: '' }
  }
  searched.push(`${BINARY_NAME} on PATH`, REPO_BINARY)
  if (isExecutableFile(REPO_BINARY)) return { binary: REPO_BINARY, searched, detail: '' }
  return {
    binary: null,
    searched,
    detail: `TOXIPROXY_URL is not set, and no ${BINARY_NAME} binary was found (looked for TOXIPROXY_SERVER, ${BINARY_NAME} on PATH, ${REPO_BINARY})`
  }
}

/** The binary startToxiproxy() would run: TOXIPROXY_SERVER, then `toxiproxy-server` on PATH, then .toxiproxy/bin. */
export function findToxiproxyBinary (): string | null {
  return locateBinary().binary
}

export async function startToxiproxy (opts: StartToxiproxyOptions = {}): Promise<ToxiproxyServer> {
  opts.signal?.throwIfAborted()
  if (opts.url != null) return await connectExternal(opts.url, 'the url option', opts)
  if (opts.binary != null) return await spawnServer(opts.binary, opts)
  const envUrl = process.env.TOXIPROXY_URL
  if (envUrl != null && envUrl !== '') return await connectExternal(envUrl, 'TOXIPROXY_URL', opts)
  const found = locateBinary()
  if (found.binary == null) throw new ToxiproxyUnavailableError(found.detail, found.searched)
  return await spawnServer(found.binary, opts)
}

// ---------------------------------------------------------------------------------------------------------------
// An existing server (TOXIPROXY_URL)

async function connectExternal (rawUrl: string, source: string, opts: StartToxiproxyOptions): Promise<ToxiproxyServer> {
  const timeoutMs = opts.startTimeoutMs ?? DEFAULT_URL_TIMEOUT_MS
  let url: string
  try {
    const parsed = new URL(rawUrl)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`unsupported protocol ${parsed.protocol}`)
    url = parsed.href.replace(/\/+$/, '')
  } catch (err) {
    throw new Error(`${source} (${rawUrl}) is not a valid http URL of a Toxiproxy API, e.g. http://127.0.0.1:8474: ${(err as Error).message}`)
  }
  let versionBody: unknown
  try {
    versionBody = await toxiproxyRequest(url, 'GET', '/version', undefined, { timeoutMs, signal: opts.signal, text: true })
  } catch (err) {
    opts.signal?.throwIfAborted()
    throw new Error(
      `${source} points at ${url}, but no Toxiproxy API answered GET /version there within ${timeoutMs} ms ` +
      `(${(err as Error).message}). Start the server (toxiproxy-server -host 127.0.0.1 -port 8474 -proxy-metrics) or unset ` +
      `${source === 'TOXIPROXY_URL' ? 'TOXIPROXY_URL' : 'the url option'} to let the harness start its own.`,
      { cause: err }
    )
  }
  const metricsText = await readMetrics(url, timeoutMs, opts.signal)
  const createdProxies = new Set<string>()

  // A shared server may carry other users' proxies: remove exactly the ones this harness created, all of them
  // even if one fails, and only then report.
  const close = once(async () => {
    const failures: Error[] = []
    for (const name of [...createdProxies]) {
      try {
        await toxiproxyRequest(url, 'DELETE', `/proxies/${encodeURIComponent(name)}`)
        createdProxies.delete(name)
      } catch (err) {
        if ((err as { status?: number }).status === 404) createdProxies.delete(name)
        else failures.push(err as Error)
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `could not remove ${failures.length} proxies from ${url}`)
  })
  return {
    url,
    version: parseVersion(versionBody, metricsText),
    client: new Toxiproxy(url),
    createdProxies,
    mode: 'external',
    pid: null,
    metricsEnabled: metricsText != null,
    close,
    [Symbol.asyncDispose]: close
  }
}

async function readMetrics (url: string, timeoutMs: number, signal?: AbortSignal): Promise<string | null> {
  try {
    return await toxiproxyRequest(url, 'GET', '/metrics', undefined, { timeoutMs, signal, text: true }) as string
  } catch {
    // 404: the server runs without -proxy-metrics/-runtime-metrics. bytes() explains that when asked.
    return null
  }
}

/** 2.12 answers {"version": "…"}; older servers answer plain text. A go-installed build says "git". */
function parseVersion (body: unknown, metricsText: string | null): string {
  const text = typeof body === 'string' ? body.trim() : ''
  let version = text
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') version = parsed.version
  } catch {}
  if (version === 'git' && metricsText != null) return goBuildVersion(parsePrometheusText(metricsText)) ?? version
  return version
}

// ---------------------------------------------------------------------------------------------------------------
// A server this process starts

/**
 * Children still running. A process that exits without closing its servers (an uncaught error, process.exit,
 * a test worker torn down) kills them from the 'exit' hook: Toxiproxy holds no state worth a graceful stop.
 * Ctrl-C in a terminal reaches the server directly (same process group), and it exits on SIGINT by itself.
 */
const liveChildren = new Set<ChildProcess>()
let exitHookInstalled = false

function killLiveChildren (): void {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL') } catch {}
  }
}

function track (child: ChildProcess): void {
  if (!exitHookInstalled) {
    process.on('exit', killLiveChildren)
    exitHookInstalled = true
  }
  liveChildren.add(child)
  child.once('exit', () => liveChildren.delete(child))
}

class LogTail {
  readonly lines: string[] = []
  private partial = ''
  private readonly onLine: (line: string) => void

  constructor (onLine: (line: string) => void) {
    this.onLine = onLine
  }

  push (chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n')
    this.partial = parts.pop() ?? ''
    for (const line of parts) {
      if (line.trim() === '') continue
      this.lines.push(line)
      if (this.lines.length > LOG_TAIL_LINES) this.lines.shift()
      this.onLine(line)
    }
  }

  text (): string {
    return this.lines.length === 0 ? '(no output)' : this.lines.join('\n')
  }
}

function hasExited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

function waitForExit (child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true)
  return new Promise(resolve => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(hasExited(child)) }, ms)
    const onExit = (): void => { clearTimeout(timer); resolve(true) }
    child.once('exit', onExit)
  })
}

async function stopChild (child: ChildProcess, killTimeoutMs: number): Promise<void> {
  if (child.pid == null || hasExited(child)) return
  child.kill('SIGTERM')
  if (await waitForExit(child, killTimeoutMs)) return
  child.kill('SIGKILL')
  if (await waitForExit(child, SIGKILL_WAIT_MS)) return
  throw new Error(`toxiproxy-server (pid ${child.pid}) did not exit within ${killTimeoutMs + SIGKILL_WAIT_MS} ms of SIGTERM and SIGKILL`)
}

type Attempt =
  | { ok: true, child: ChildProcess, url: string, log: LogTail }
  | { ok: false, retry: boolean, error: Error }

async function spawnServer (binary: string, opts: StartToxiproxyOptions): Promise<ToxiproxyServer> {
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  const deadline = Date.now() + startTimeoutMs
  // Toxiproxy does not exit when its API port is taken (it logs the bind error and waits for a signal), so
  // "something answers on the port" proves nothing: the server is ours only if it knows a proxy that only our
  // -config file defines. The proxy is disabled, so it binds nothing, and it is deleted once the server is up.
  const identity = `chiral-identity-${randomBytes(6).toString('hex')}`
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'chiral-toxiproxy-'))
  const config = path.join(tmp, 'identity.json')
  let attempt: Attempt | undefined
  try {
    await fs.promises.writeFile(config, JSON.stringify([{ name: identity, listen: '127.0.0.1:0', upstream: '127.0.0.1:9', enabled: false }]))
    // Only a race for a free port is worth retrying; a caller-chosen port that is taken is the caller's problem.
    const attempts = opts.port != null ? 1 : 3
    for (let i = 0; i < attempts; i++) {
      const port = opts.port ?? await freePort({ signal: opts.signal })
      attempt = await trySpawn(binary, port, config, identity, deadline, startTimeoutMs, opts)
      if (attempt.ok || !attempt.retry) break
    }
  } finally {
    await fs.promises.rm(tmp, { recursive: true, force: true })
  }
  if (attempt == null) throw new Error('unreachable: no start attempt was made')
  if (!attempt.ok) throw attempt.error
  const { child, url, log } = attempt
  const killTimeoutMs = opts.killTimeoutMs ?? DEFAULT_KILL_TIMEOUT_MS

  let versionBody: unknown
  let metricsText: string | null
  try {
    await toxiproxyRequest(url, 'DELETE', `/proxies/${identity}`)
    versionBody = await toxiproxyRequest(url, 'GET', '/version', undefined, { text: true })
    metricsText = await readMetrics(url, DEFAULT_URL_TIMEOUT_MS)
  } catch (err) {
    await stopChild(child, killTimeoutMs)
    throw err
  }

  const createdProxies = new Set<string>()
  const close = once(async () => {
    // The proxies die with the server; forgetting them keeps createdProxies truthful for callers.
    createdProxies.clear()
    try {
      await stopChild(child, killTimeoutMs)
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast server output:\n${log.text()}`, { cause: err })
    }
  })
  return {
    url,
    version: parseVersion(versionBody, metricsText),
    client: new Toxiproxy(url),
    createdProxies,
    mode: 'spawned',
    pid: child.pid ?? null,
    metricsEnabled: metricsText != null,
    close,
    [Symbol.asyncDispose]: close
  }
}

async function trySpawn (
  binary: string, port: number, config: string, identity: string, deadline: number, startTimeoutMs: number, opts: StartToxiproxyOptions
): Promise<Attempt> {
  const url = `http://127.0.0.1:${port}`
  // Written by event callbacks, read by the loop below (an object, so the checks are not narrowed away).
  const seen: { bindError: string | null, spawnError: NodeJS.ErrnoException | null } = { bindError: null, spawnError: null }
  const log = new LogTail(line => {
    if (line.includes('Server finished with error')) {
      try { seen.bindError = String(JSON.parse(line).error ?? line) } catch { seen.bindError = line }
    }
  })
  const child = spawn(binary, ['-host', '127.0.0.1', '-port', String(port), '-proxy-metrics', '-runtime-metrics', '-config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // warn keeps the bind error (error level) and drops a line per proxied connection, which a 100-node run
    // would otherwise produce by the thousand. TOXIPROXY_LOG_LEVEL=debug brings them back for diagnosis.
    env: { ...process.env, LOG_LEVEL: process.env.TOXIPROXY_LOG_LEVEL ?? 'warn' }
  })
  child.once('error', err => { seen.spawnError = err })
  child.stdout?.on('data', chunk => log.push(chunk))
  child.stderr?.on('data', chunk => log.push(chunk))
  // Neither the child nor its pipes may keep this process alive: a harness that forgets to close must still
  // exit, and the 'exit' hook then kills the server.
  child.unref()
  for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.()
  if (child.pid != null) track(child)

  const fail = async (retry: boolean, message: string, cause?: unknown): Promise<Attempt> => {
    await stopChild(child, DEFAULT_KILL_TIMEOUT_MS).catch(() => {})
    return { ok: false, retry, error: new Error(message, { cause }) }
  }

  while (true) {
    if (seen.spawnError != null) {
      const e = seen.spawnError
      return await fail(false, `could not run ${binary}: ${e.code ?? ''} ${e.message}`.trim(), e)
    }
    if (hasExited(child)) {
      return await fail(false, `${binary} exited during start-up (${child.exitCode ?? child.signalCode}) on port ${port}:\n${log.text()}`)
    }
    if (seen.bindError != null) {
      return await fail(opts.port == null, `toxiproxy-server could not listen on 127.0.0.1:${port}: ${seen.bindError}`)
    }
    if (opts.signal?.aborted === true) {
      await stopChild(child, DEFAULT_KILL_TIMEOUT_MS).catch(() => {})
      throw opts.signal.reason
    }
    const remaining = deadline - Date.now()
    if (remaining <= 0) {
      return await fail(false, `toxiproxy-server (${binary}) did not answer on ${url} within ${startTimeoutMs} ms:\n${log.text()}`)
    }
    try {
      const proxy = await toxiproxyRequest(url, 'GET', `/proxies/${identity}`, undefined, { timeoutMs: Math.min(1_000, remaining) })
      if ((proxy as { name?: unknown } | undefined)?.name === identity) return { ok: true, child, url, log }
    } catch {
      // Not up yet, or someone else's server on this port (it does not know our identity proxy).
    }
    try {
      await sleep(POLL_INTERVAL_MS, undefined, { signal: opts.signal })
    } catch {}
  }
}

function once (fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined
  return async () => { p ??= fn(); await p }
}
