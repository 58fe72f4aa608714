import { setTimeout as sleep } from 'node:timers/promises'

/**
 * The first process of a node's swarm task, for the whole run: it holds the task's overlay address and starts the
 * node (or a blackhole) as its child on request. A swarm service has no "pause container" to hold a network
 * namespace while its process is replaced, and replacing a task changes its address (and other engines learn the
 * new one by gossip, late); the manager's API cannot signal a task on another engine at once either (an update is
 * scheduled, seconds later under load). So the task's PID 1 is this agent:
 *
 * - `POST /start {"args": [...]}` runs the image's Node binary with those arguments (the node's main module and its
 *   flags, or a blackhole script); restarts are instant and keep the address;
 * - `POST /kill` is a SIGKILL of the child right when the harness asks, as `pkill -9` on a server;
 * - while no child runs (never started, killed, crashed, shut down) the task and its address live on and the node's
 *   ports refuse connections: a dead process on a live server, as in docker mode;
 * - `GET /status` says whether the child runs and how it ended (the supervisor's process check).
 *
 * It follows the control channel's rules (GUIDE's token contract): only requests carrying the node's token (the
 * slot's swarm secret), never a browser (Origin) or a Host name other than localhost (DNS rebinding), JSON bodies.
 * One `node -e` script for the node image's own Node binary: the image has no shell.
 */
export const AGENT_PORT = 7071
export const AGENT_READY = 'CHIRAL_AGENT_READY'

/**
 * The control channel's rules for a task's HTTP server (script text, shared by the agent and the swarm's Toxiproxy
 * front): `refused(req, reply)` answers 403/401 and returns true unless the request carries the token of the file
 * CHIRAL_AGENT_TOKEN_FILE names, has no Origin and a localhost or IP-address Host.
 */
export const REQUEST_GUARD = `
const http = require('node:http'), fs = require('node:fs'), crypto = require('node:crypto'), net = require('node:net')
const digest = text => crypto.createHash('sha256').update(text).digest()
const expected = digest('Bearer ' + fs.readFileSync(process.env.CHIRAL_AGENT_TOKEN_FILE, 'utf8').trim())
const refused = (req, reply) => {
  const host = String(req.headers.host ?? '').replace(/:\\d+$/, '').replace(/^\\[|\\]$/g, '')
  const why = req.headers.origin !== undefined ? [403, 'forbidden', 'requests from web pages are refused']
    : host !== 'localhost' && net.isIP(host) === 0 ? [403, 'forbidden', 'use localhost or an IP address as Host']
      : !crypto.timingSafeEqual(digest(String(req.headers.authorization ?? '')), expected) ? [401, 'unauthorized', 'missing or wrong control token']
        : undefined
  if (why !== undefined) reply(why[0], { error: { code: why[1], message: why[2] } })
  return why !== undefined
}
const replier = res => (code, body) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(body)) }
`

export const AGENT_SCRIPT = `${REQUEST_GUARD}
const { spawn } = require('node:child_process')
let child = null, ended = null
const status = () => ({ running: child != null, ended })
process.on('SIGTERM', () => { if (child != null) child.kill('SIGKILL'); process.exit(0) })
http.createServer((req, res) => {
  const reply = replier(res)
  if (refused(req, reply)) return
  const chunks = []
  req.on('data', c => { chunks.push(c) })
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/status') return reply(200, status())
    if (req.method === 'POST' && req.url === '/kill') {
      if (child == null) return reply(200, status())
      child.once('exit', () => reply(200, status()))
      return child.kill('SIGKILL')
    }
    if (req.method === 'POST' && req.url === '/start') {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return reply(415, { error: { code: 'bad-request', message: 'body must be Content-Type: application/json' } })
      if (child != null) return reply(409, { error: { code: 'conflict', message: 'already running' } })
      let args
      try { args = JSON.parse(Buffer.concat(chunks).toString()).args } catch { args = undefined }
      if (!Array.isArray(args) || !args.every(a => typeof a === 'string')) return reply(400, { error: { code: 'bad-request', message: 'body: {"args": [string]}' } })
      const started = spawn(process.execPath, args, { stdio: 'inherit' })
      child = started
      ended = null
      started.on('exit', (code, signal) => { if (child === started) { child = null; ended = { code, signal, at: Date.now() } } })
      return reply(200, status())
    }
    reply(404, { error: { code: 'not-found', message: 'POST /start, POST /kill or GET /status' } })
  })
}).listen(${AGENT_PORT}, '0.0.0.0', () => { console.log('${AGENT_READY}') })
`

export interface AgentStatus {
  running: boolean
  ended: { code: number | null, signal: string | null, at: number } | null
}

/** The harness's side: the agent of one slot's task, at its engine's published port. */
export class AgentClient {
  readonly #url: string
  readonly #token: string

  constructor (url: string, token: string) {
    this.#url = url
    this.#token = token
  }

  async start (args: string[], timeoutMs: number): Promise<AgentStatus> {
    return await this.#call('POST', '/start', timeoutMs, { args })
  }

  async kill (timeoutMs: number): Promise<AgentStatus> {
    return await this.#call('POST', '/kill', timeoutMs)
  }

  async status (timeoutMs: number): Promise<AgentStatus> {
    return await this.#call('GET', '/status', timeoutMs)
  }

  /** Until the agent answers (its task has just started and its engine publishes the port). */
  async waitUntilUp (timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      signal.throwIfAborted()
      try {
        await this.status(2_000)
        return
      } catch (err) {
        if (Date.now() >= deadline) throw new Error(`the node agent at ${this.#url} did not answer within ${timeoutMs} ms: ${(err as Error).message}`)
      }
      await sleep(250)
    }
  }

  /** Whether the child has ended within `ms`; an agent that does not answer counts as gone with its task. */
  async waitForExit (ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    for (;;) {
      const left = deadline - Date.now()
      try {
        if (!(await this.status(Math.max(500, Math.min(left, 5_000)))).running) return true
      } catch {
        return true
      }
      if (Date.now() >= deadline) return false
      await sleep(200)
    }
  }

  async #call (method: string, path: string, timeoutMs: number, body?: unknown): Promise<AgentStatus> {
    const res = await fetch(`${this.#url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.#token}`, ...(body != null ? { 'content-type': 'application/json' } : {}) },
      ...(body != null ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const answer = await res.json() as AgentStatus & { error?: { message?: string } }
    if (!res.ok) throw new Error(`node agent ${method} ${path}: ${res.status} ${answer.error?.message ?? ''}`)
    return answer
  }
}
