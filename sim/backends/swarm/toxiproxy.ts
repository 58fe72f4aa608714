import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { TOXIPROXY_BINARY_IN_IMAGE } from '../docker-image.ts'
import { REQUEST_GUARD } from './agent.ts'

/**
 * Toxiproxy as a service of the run, so that its proxies sit on the run's overlay network between nodes on any
 * engines. Toxiproxy's API has no authentication, so inside the task it listens on the task's loopback only, and a
 * small Node front (FRONT_SCRIPT) is what the task's engine publishes: it forwards only requests carrying the run's
 * token (a swarm secret), with the node agent's rules (REQUEST_GUARD). The proxies themselves listen on the task's
 * overlay address: unpublished, reachable from the run's network only.
 *
 * The harness side is a loopback forwarder that adds the token, so the harness's own Toxiproxy client (sim/faults)
 * talks to it as to any Toxiproxy server, unchanged.
 */

/** The published front; Toxiproxy's own API port stays on the task's loopback. */
export const TOXIPROXY_FRONT_PORT = 8475
const TOXIPROXY_API_PORT = 8474
const TOXIPROXY_FRONT_READY = 'CHIRAL_TOXIPROXY_FRONT_READY'

export const FRONT_SCRIPT = `${REQUEST_GUARD}
const { spawn } = require('node:child_process')
const server = spawn(${JSON.stringify(TOXIPROXY_BINARY_IN_IMAGE)}, ['-host', '127.0.0.1', '-port', '${TOXIPROXY_API_PORT}', '-proxy-metrics', '-runtime-metrics'], { stdio: 'inherit', env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' } })
// Without its Toxiproxy the task is useless: end it, and the manager reports why.
server.on('exit', (code, signal) => { console.error('toxiproxy-server exited (' + (signal ?? 'code ' + code) + ')'); process.exit(1) })
process.on('SIGTERM', () => { server.kill('SIGKILL'); process.exit(0) })
http.createServer((req, res) => {
  const reply = replier(res)
  if (refused(req, reply)) return
  const type = req.headers['content-type']
  const upstream = http.request({ host: '127.0.0.1', port: ${TOXIPROXY_API_PORT}, method: req.method, path: req.url, headers: type !== undefined ? { 'content-type': type } : {} }, answer => {
    res.writeHead(answer.statusCode ?? 502, answer.headers['content-type'] !== undefined ? { 'content-type': answer.headers['content-type'] } : {})
    answer.pipe(res)
  })
  upstream.on('error', err => { if (!res.headersSent) reply(502, { error: 'toxiproxy-server: ' + err.message }); else res.destroy() })
  req.pipe(upstream)
}).listen(${TOXIPROXY_FRONT_PORT}, '0.0.0.0', () => { console.log('${TOXIPROXY_FRONT_READY}') })
`

export interface LoopbackForwarder {
  /** http://127.0.0.1:<port>, for startToxiproxy({ url }). */
  readonly url: string
  close(): Promise<void>
}

/**
 * A listener on this machine's loopback that passes every request on to `target` with the token added: the
 * harness's Toxiproxy client needs no notion of tokens. Loopback only, as a Toxiproxy the harness spawns itself.
 */
export async function startLoopbackForwarder (target: string, token: string, timeoutMs: number): Promise<LoopbackForwarder> {
  const base = new URL(target)
  const server = http.createServer((req, res) => {
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${token}` }
    if (req.headers['content-type'] != null) headers['content-type'] = req.headers['content-type']
    const upstream = http.request({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers, timeout: timeoutMs }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers['content-type'] != null ? { 'content-type': answer.headers['content-type'] } : {})
      answer.pipe(res)
    })
    const fail = (message: string): void => {
      if (res.headersSent) { res.destroy(); return }
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: `the swarm's Toxiproxy at ${target}: ${message}` }))
    }
    upstream.on('timeout', () => { upstream.destroy(new Error(`no answer within ${timeoutMs} ms`)) })
    upstream.on('error', err => { fail(err.message) })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve() })
  })
  const { port } = server.address() as AddressInfo
  let closed: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      closed ??= new Promise<void>(resolve => {
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
      await closed
    }
  }
}

/**
 * Until Toxiproxy answers GET /version through `url`: a running task is not yet a listening front (Node boots), nor
 * a front a listening Toxiproxy (its 502), and the harness's client asks once.
 */
export async function waitUntilToxiproxyAnswers (url: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  for (;;) {
    signal.throwIfAborted()
    try {
      const res = await fetch(`${url}/version`, { signal: AbortSignal.any([signal, AbortSignal.timeout(5_000)]) })
      if (res.ok) return
      last = `${res.status} ${(await res.text()).slice(0, 200)}`
    } catch (err) {
      signal.throwIfAborted()
      last = (err as Error).message
    }
    if (Date.now() >= deadline) throw new Error(`no answer to GET /version within ${timeoutMs} ms (last: ${last})`)
    await sleep(250)
  }
}
