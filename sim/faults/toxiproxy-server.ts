import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Toxiproxy } from 'toxiproxy-node-client'
import { toxiproxyRequest } from './api.ts'
import { freePort } from '../host/free-port.ts'
import { ChildNode } from '../host/child.ts'
import { goBuildVersion, parsePrometheusText } from './metrics.ts'

/**
 * The Toxiproxy server every fault goes through: either one this process starts from a local binary, or an
 * existing one named by TOXIPROXY_URL. Either way the caller gets the same handle and disposes it the same way.
 */

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BINARY_NAME = 'toxiproxy-server'
export const REPO_BINARY = path.join(REPO_ROOT, '.toxiproxy', 'bin', BINARY_NAME)

const DEFAULT_START_TIMEOUT_MS = 10_000
const DEFAULT_URL_TIMEOUT_MS = 5_000
const DEFAULT_KILL_TIMEOUT_MS = 3_000
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
  /** False once a spawned server has exited (its proxies went with it); always true for an external one. */
  readonly running: boolean
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
    running: true,
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
 * A spawned server is a ChildNode (one child-process helper for the whole harness): in its own process group, so a
 * terminal's Ctrl-C reaches only the harness, which still needs the server to delete its proxies; tied to this
 * process by the kernel's parent-death signal, so a SIGKILLed harness takes it along; unref'd, so a harness that
 * forgets to close it still exits (and the 'exit' hook kills it). Where the tie is unavailable, the next run's
 * reaper (reapOrphanedToxiproxyServers) finds it by the owner pid in its -config path.
 */
const CONFIG_DIR_PREFIX = 'chiral-toxiproxy-'

class LogTail {
  readonly lines: string[] = []

  push (line: string): void {
    if (line.trim() === '') return
    this.lines.push(line)
    if (this.lines.length > LOG_TAIL_LINES) this.lines.shift()
  }

  text (): string {
    return this.lines.length === 0 ? '(no output)' : this.lines.join('\n')
  }
}

async function stopChild (child: ChildNode<undefined>, killTimeoutMs: number): Promise<void> {
  if (child.exited) return
  try {
    await child.terminate(killTimeoutMs)
  } catch {
    throw new Error(`toxiproxy-server (pid ${child.pid}) did not exit within ${killTimeoutMs} ms of SIGTERM nor after SIGKILL`)
  }
}

/**
 * Kills toxiproxy-servers that a harness started and that outlived it (SIGKILL where no parent-death signal exists,
 * or an older version): its -config path names the owner's pid, and a server whose parent is no longer that owner
 * is an orphan. Returns the pids killed.
 */
export function reapOrphanedToxiproxyServers (): number[] {
  let out = ''
  try {
    out = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8', timeout: 10_000 })
  } catch {
    return []
  }
  const killed: number[] = []
  const marker = new RegExp(`-config \\S*${CONFIG_DIR_PREFIX}(\\d+)-`)
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line)
    if (m == null || !m[3]!.includes(BINARY_NAME)) continue
    const owner = marker.exec(m[3]!)?.[1]
    if (owner == null || Number(m[2]) === Number(owner)) continue
    try {
      process.kill(Number(m[1]), 'SIGKILL')
      killed.push(Number(m[1]))
    } catch { /* gone meanwhile, or not ours to kill */ }
  }
  return killed
}

type Attempt =
  | { ok: true, child: ChildNode<undefined>, url: string, log: LogTail }
  | { ok: false, retry: boolean, error: Error }

async function spawnServer (binary: string, opts: StartToxiproxyOptions): Promise<ToxiproxyServer> {
  // Where no parent-death signal tied an earlier harness's server to it, this is where its orphan ends.
  reapOrphanedToxiproxyServers()
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  const deadline = Date.now() + startTimeoutMs
  // Toxiproxy does not exit when its API port is taken (it logs the bind error and waits for a signal), so
  // "something answers on the port" proves nothing: the server is ours only if it knows a proxy that only our
  // -config file defines. The proxy is disabled, so it binds nothing, and it is deleted once the server is up.
  const identity = `chiral-identity-${randomBytes(6).toString('hex')}`
  // The owner's pid in the path is how a later run's reaper knows whose server it is.
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), `${CONFIG_DIR_PREFIX}${process.pid}-`))
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
    pid: child.pid,
    get running () { return !child.exited },
    metricsEnabled: metricsText != null,
    close,
    [Symbol.asyncDispose]: close
  }
}

async function trySpawn (
  binary: string, port: number, config: string, identity: string, deadline: number, startTimeoutMs: number, opts: StartToxiproxyOptions
): Promise<Attempt> {
  const url = `http://127.0.0.1:${port}`
  // Written by the line callback, read by the loop below (an object, so the checks are not narrowed away).
  const seen: { bindError: string | null } = { bindError: null }
  const log = new LogTail()
  const onLine = (line: string): void => {
    log.push(line)
    if (line.includes('Server finished with error')) {
      try { seen.bindError = String(JSON.parse(line).error ?? line) } catch { seen.bindError = line }
    }
  }
  try {
    // Checked here: behind the parent-death wrapper a missing binary is the wrapper's exit code, not ENOENT.
    fs.accessSync(binary, fs.constants.X_OK)
  } catch (err) {
    return { ok: false, retry: false, error: new Error(`could not run ${binary}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err }) }
  }
  let child: ChildNode<undefined>
  try {
    child = await ChildNode.spawnCommand<undefined>({
      name: BINARY_NAME,
      file: binary,
      args: ['-host', '127.0.0.1', '-port', String(port), '-proxy-metrics', '-runtime-metrics', '-config', config],
      // warn keeps the bind error (error level) and drops a line per proxied connection, which a 100-node run
      // would otherwise produce by the thousand. TOXIPROXY_LOG_LEVEL=debug brings them back for diagnosis.
      env: { ...process.env, LOG_LEVEL: process.env.TOXIPROXY_LOG_LEVEL ?? 'warn' },
      onLine,
      detached: true,
      dieWithParent: true,
      unref: true,
      startTimeoutMs: Math.max(1, deadline - Date.now()),
      signal: opts.signal
    })
  } catch (err) {
    opts.signal?.throwIfAborted()
    return { ok: false, retry: false, error: new Error(`could not run ${binary}: ${(err as Error).message}`, { cause: err }) }
  }

  const fail = async (retry: boolean, message: string, cause?: unknown): Promise<Attempt> => {
    await stopChild(child, DEFAULT_KILL_TIMEOUT_MS).catch(() => {})
    return { ok: false, retry, error: new Error(message, { cause }) }
  }

  while (true) {
    if (child.exited) {
      return await fail(false, `${binary} exited during start-up (${child.exitStatus ?? 'unknown status'}) on port ${port}:\n${log.text()}`)
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
      if ((proxy as { name?: unknown } | undefined)?.name === identity) {
        // An abort that arrived while the server came up still wins: the caller has stopped waiting for it.
        if (abortedNow(opts.signal)) {
          await stopChild(child, DEFAULT_KILL_TIMEOUT_MS).catch(() => {})
          throw opts.signal!.reason
        }
        return { ok: true, child, url, log }
      }
    } catch {
      // Not up yet, or someone else's server on this port (it does not know our identity proxy).
    }
    try {
      await sleep(POLL_INTERVAL_MS, undefined, { signal: opts.signal })
    } catch {}
  }
}

/** A function, so that a check earlier in the same loop does not narrow the answer away. */
function abortedNow (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

function once (fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined
  return async () => { p ??= fn(); await p }
}
