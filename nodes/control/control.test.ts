import { createServer as createTcpServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CommandError, type CommandHandlers } from '../commands.ts'
import { EventLog, type NodeEvent } from '../events.ts'
import { RemoteNode } from './client.ts'
import { serveControl, type ControlServer, type ServeControlOptions } from './server.ts'
import { generateControlToken } from './token.ts'

type Role = 'bootstrap' | 'peer'

const TOKEN = generateControlToken()
const AUTH = { authorization: `Bearer ${TOKEN}` }

/** Teardown in reverse order, like an AsyncDisposableStack (kept plain so the file also runs where that global is missing). */
const cleanups: Array<() => Promise<void>> = []
const stack = {
  use<T extends AsyncDisposable> (resource: T): T {
    cleanups.push(async () => { await resource[Symbol.asyncDispose]() })
    return resource
  },
  defer (cleanup: () => Promise<void>): void { cleanups.push(cleanup) }
}
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function deferred<T> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>(r => { resolve = r })
  return { promise, resolve }
}

function fakeTarget (role: Role = 'peer', extra: CommandHandlers = {}): { name: string, role: Role, log: EventLog, handlers: CommandHandlers } {
  const name = `fake-${role}`
  const handlers: CommandHandlers = {
    info: async () => ({
      name, role, peerId: '12D3KooWFake', multiaddrs: ['/ip4/127.0.0.1/tcp/4001'], dhtProtocol: '/ipfs/kad/1.0.0',
      versions: { node: process.version, libp2p: 'fake', kadDht: 'fake' }
    }),
    getDhtRoutingTableSize: async () => ({ size: 7, peers: 5 }),
    connectWithTimeout: async request => ({ success: true, bootstrap: request.bootstrapAddrs?.[0], attempts: [] }),
    ...extra
  }
  return { name, role, log: new EventLog(name), handlers }
}

async function serve (target: ReturnType<typeof fakeTarget>, opts: Partial<ServeControlOptions> = {}): Promise<ControlServer> {
  const server = await serveControl(target, { token: TOKEN, ...opts })
  stack.use(server)
  return server
}

function remote (target: { name: string, role: Role }, url: string, extra: Partial<ConstructorParameters<typeof RemoteNode>[0]> = {}): RemoteNode {
  return stack.use(new RemoteNode({ name: target.name, role: target.role, url, token: TOKEN, ...extra }))
}

async function rejection (promise: Promise<unknown>): Promise<CommandError> {
  const error = await promise.then(() => { throw new Error('expected a rejection') }, (err: unknown) => err)
  expect(error).toBeInstanceOf(CommandError)
  return error as CommandError
}

async function post (url: string, command: string, body: string): Promise<{ status: number, json: any, text: string }> {
  const res = await fetch(`${url}/commands/${command}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...AUTH } })
  const text = await res.text()
  return { status: res.status, json: JSON.parse(text), text }
}

function log (target: { log: EventLog }, message: string): NodeEvent {
  return target.log.emit({ type: 'log', level: 'info', message })
}

/** A TCP relay the test can cut, as a flaky network or a restarted proxy would, while the node keeps running. */
async function cuttableRelay (port: number): Promise<{ url: string, connections: () => number, cut: () => void }> {
  const open = new Set<Socket>()
  let connections = 0
  const relay = createTcpServer(client => {
    connections++
    const upstream = connect(port, '127.0.0.1')
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      open.add(a)
      a.pipe(b)
      a.on('error', () => { b.destroy() })
      a.on('close', () => { open.delete(a); b.destroy() })
    }
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  stack.defer(async () => {
    for (const socket of open) socket.destroy()
    await new Promise(resolve => relay.close(resolve))
  })
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    connections: () => connections,
    cut: () => { for (const socket of open) socket.destroy() }
  }
}

describe('control channel: commands', () => {
  it('round-trips commands through the schemas', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const node = remote(target, server.url)
    expect(await node.call('getDhtRoutingTableSize', {})).toEqual({ size: 7, peers: 5 })
    expect((await node.call('info', {})).peerId).toBe('12D3KooWFake')
    expect(await node.call('connectWithTimeout', { bootstrapAddrs: ['/dns4/b1/tcp/4001'], timeoutMs: 5_000 }))
      .toEqual({ success: true, bootstrap: '/dns4/b1/tcp/4001', attempts: [] })
  })

  it('answers /healthz, and waitUntilReady polls until the server is up', async () => {
    const target = fakeTarget('bootstrap')
    const probe = await serveControl(target, { token: TOKEN })
    const port = probe.port
    await probe.close()
    const ready = RemoteNode.waitUntilReady(`http://127.0.0.1:${port}`, { token: TOKEN, timeoutMs: 10_000, intervalMs: 50 })
    await new Promise(resolve => setTimeout(resolve, 200))
    await serve(target, { port })
    expect(await ready).toEqual({ ok: true, name: 'fake-bootstrap', role: 'bootstrap' })
  })

  it('waitUntilReady gives up at its deadline with the last error', async () => {
    const probe = await serveControl(fakeTarget(), { token: TOKEN })
    await probe.close()
    const error = await rejection(RemoteNode.waitUntilReady(probe.url, { token: TOKEN, timeoutMs: 300, intervalMs: 50 }))
    expect(error.code).toBe('unavailable')
    expect(error.message).toMatch(/within 300 ms; last error: .*ECONNREFUSED/)
  })

  it('rejects a malformed body or a bad field with 400 naming the problem, and keeps serving', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const node = remote(target, server.url)

    const notJson = await post(server.url, 'getDhtRoutingTableSize', '{"size": ')
    expect(notJson.status).toBe(400)
    expect(notJson.json.error.code).toBe('bad-request')
    expect(notJson.json.error.message).toMatch(/not valid JSON/)

    const badField = await rejection(node.call('connectWithTimeout', { timeoutMs: 100 }))
    expect(badField.code).toBe('bad-request')
    expect(badField.field).toBe('timeoutMs')
    expect(badField.message).toMatch(/at least 5000 \(the plan allows 5–30 s\)/)

    const unknownField = await post(server.url, 'connectWithTimeout', '{"timeOutMs": 5000}')
    expect(unknownField.status).toBe(400)
    expect(unknownField.json.error.message).toContain('timeOutMs')
    expect(unknownField.json.error.field).toBe('timeOutMs')

    // Values the node would only fail on later are refused here, over HTTP as in process (issue 12): the handlers
    // never run.
    const never = async (): Promise<never> => { throw new Error('the handler ran on a bad request') }
    const strict = await serve(fakeTarget('peer', { waitForBidirectionalDiscovery: never, provide: never, shareFile: never, startHealthMonitoring: never, connectWithTimeout: never }))
    for (const [command, body, field] of [
      ['connectWithTimeout', { bootstrapAddrs: ['garbage'] }, 'bootstrapAddrs.0'],
      ['waitForBidirectionalDiscovery', { timeoutMs: 999_999_999_999 }, 'timeoutMs'],
      ['provide', { cid: 'not-a-cid' }, 'cid'],
      ['shareFile', { name: 'f', contentBase64: '!!notbase64!!' }, 'contentBase64'],
      ['startHealthMonitoring', { address: 'garbage' }, 'address']
    ] as const) {
      const r = await post(strict.url, command, JSON.stringify(body))
      expect({ command, status: r.status, code: r.json.error.code, field: r.json.error.field }).toEqual({ command, status: 400, code: 'bad-request', field })
    }

    expect(await node.call('getDhtRoutingTableSize', {})).toEqual({ size: 7, peers: 5 })
  })

  it('survives garbage on the socket, bad percent-encoding and a bad ?from=', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const garbage = connect(server.port, '127.0.0.1')
    garbage.on('error', () => {})
    const answered = new Promise<string>(resolve => {
      let text = ''
      garbage.on('data', chunk => { text += String(chunk) })
      garbage.on('close', () => { resolve(text) })
    })
    garbage.end('\x00\x01 NOT HTTP AT ALL\r\n\r\n')
    expect(await answered).toMatch(/^HTTP\/1\.1 400/)

    const badName = await post(server.url, '%E0%A4%A', '{}')
    expect(badName.status).toBe(400)
    expect(badName.json.error.message).toMatch(/percent-encoding/)

    const badFrom = await fetch(`${server.url}/events?from=-1`, { headers: AUTH })
    expect(badFrom.status).toBe(400)
    expect((await badFrom.json() as any).error.field).toBe('from')

    expect(await remote(target, server.url).call('getDhtRoutingTableSize', {})).toEqual({ size: 7, peers: 5 })
  })

  it('answers 413 to an oversized body and keeps serving', async () => {
    const target = fakeTarget()
    const server = await serve(target, { maxBodyBytes: 1024 })
    const big = await post(server.url, 'shareFile', JSON.stringify({ name: 'a', contentBase64: 'x'.repeat(4096) }))
    expect(big.status).toBe(413)
    expect(big.json.error.message).toMatch(/1024-byte limit/)
    expect(await remote(target, server.url).call('getDhtRoutingTableSize', {})).toEqual({ size: 7, peers: 5 })
  })

  it('answers 404 to an unknown command and to an unknown route', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const unknown = await post(server.url, 'fly', '{}')
    expect(unknown.status).toBe(404)
    expect(unknown.json.error.code).toBe('unknown-command')
    const error = await rejection(remote(target, server.url).call('fly' as 'info', {}))
    expect(error.code).toBe('unknown-command')
    expect((await fetch(`${server.url}/nowhere`, { headers: AUTH })).status).toBe(404)
    expect((await fetch(`${server.url}/commands/info`, { headers: AUTH })).status).toBe(405)
  })

  it('answers 409 to a peer-only command on a bootstrap node', async () => {
    const target = fakeTarget('bootstrap')
    const server = await serve(target)
    const raw = await post(server.url, 'connectWithTimeout', '{}')
    expect(raw.status).toBe(409)
    const error = await rejection(remote(target, server.url).call('connectWithTimeout', {}))
    expect(error.code).toBe('not-supported')
    expect(error.message).toContain('bootstrap')
  })

  it('answers 500 with the message and no stack when a handler throws', async () => {
    const target = fakeTarget('peer', { getMetrics: async () => { throw new Error('disk on fire') } })
    const server = await serve(target)
    const raw = await post(server.url, 'getMetrics', '')
    expect(raw.status).toBe(500)
    expect(raw.json).toEqual({ error: { code: 'failed', message: 'disk on fire' } })
    expect(raw.text).not.toMatch(/\bat .*\.ts:\d+/)
    const error = await rejection(remote(target, server.url).call('getMetrics', {}))
    expect(error.code).toBe('failed')
    expect(error.message).toBe('disk on fire')
  })

  it('answers 500 naming the field when a handler returns an invalid response', async () => {
    const target = fakeTarget('peer', { refreshRoutingTable: async () => ({ size: 'seven' }) as never })
    const server = await serve(target)
    const raw = await post(server.url, 'refreshRoutingTable', '{}')
    expect(raw.status).toBe(500)
    expect(raw.json.error).toMatchObject({ code: 'failed', field: 'size' })
    expect(raw.json.error.message).toMatch(/node bug: refreshRoutingTable returned an invalid response: field "size"/)
  })

  it('aborts the handler signal when the caller aborts', async () => {
    const started = deferred<AbortSignal>()
    const target = fakeTarget('peer', {
      waitForBidirectionalDiscovery: async (_request, { signal }) => {
        started.resolve(signal!)
        return await new Promise((_resolve, reject) => { signal!.addEventListener('abort', () => { reject(signal!.reason) }) })
      }
    })
    const server = await serve(target)
    const caller = new AbortController()
    const call = remote(target, server.url).call('waitForBidirectionalDiscovery', {}, { signal: caller.signal })
    const handlerSignal = await started.promise
    caller.abort(new Error('scenario step cancelled'))
    const error = await rejection(call)
    expect(error.code).toBe('aborted')
    expect(error.message).toContain('scenario step cancelled')
    await vi.waitFor(() => { expect(handlerSignal.aborted).toBe(true) })
  })

  it('gives every call a deadline, and the node stops working on it', async () => {
    const started = deferred<AbortSignal>()
    const target = fakeTarget('peer', {
      getMetrics: async (_request, { signal }) => {
        started.resolve(signal!)
        return await new Promise(() => {})
      }
    })
    const server = await serve(target)
    const error = await rejection(remote(target, server.url, { requestTimeoutMs: 200 }).call('getMetrics', {}))
    expect(error.code).toBe('unavailable')
    expect(error.message).toMatch(/did not answer getMetrics within 200 ms/)
    const handlerSignal = await started.promise
    await vi.waitFor(() => { expect(handlerSignal.aborted).toBe(true) })
  })

  it('stretches the deadline for a request that carries its own timeoutMs', async () => {
    const target = fakeTarget('peer', {
      waitForBidirectionalDiscovery: async () => {
        await new Promise(resolve => setTimeout(resolve, 300))
        return { success: true, durationMs: 300, verified: [], missing: [] }
      }
    })
    const server = await serve(target)
    const node = remote(target, server.url, { requestTimeoutMs: 100 })
    expect((await node.call('waitForBidirectionalDiscovery', { timeoutMs: 1 })).success).toBe(true)
  })

  it('reports an unreachable node as unavailable, naming it', async () => {
    const probe = await serveControl(fakeTarget(), { token: TOKEN })
    await probe.close()
    const error = await rejection(remote({ name: 'gone', role: 'peer' }, probe.url).call('info', {}))
    expect(error.code).toBe('unavailable')
    expect(error.message).toMatch(new RegExp(`^node gone at ${probe.url} is not reachable: .*ECONNREFUSED`))
  })
})

describe('control channel: events', () => {
  function collect (node: RemoteNode, from = 0): { events: NodeEvent[], stop: () => void } {
    const events: NodeEvent[] = []
    const stop = node.subscribe(event => { events.push(event) }, from)
    return { events, stop }
  }

  it('replays from seq 0, then delivers live events in order', async () => {
    const target = fakeTarget()
    log(target, 'a')
    log(target, 'b')
    const server = await serve(target)
    const { events } = collect(remote(target, server.url))
    await vi.waitFor(() => { expect(events).toHaveLength(2) })
    log(target, 'c')
    await vi.waitFor(() => { expect(events).toHaveLength(3) })
    expect(events.map(e => [e.seq, e.type === 'log' && e.message])).toEqual([[0, 'a'], [1, 'b'], [2, 'c']])
    expect(events[0]?.node).toBe('fake-peer')
  })

  it('replays from a given seq', async () => {
    const target = fakeTarget()
    for (const m of ['a', 'b', 'c']) log(target, m)
    const server = await serve(target)
    const { events } = collect(remote(target, server.url), 2)
    await vi.waitFor(() => { expect(events.map(e => e.seq)).toEqual([2]) })
  })

  it('skips heartbeats', async () => {
    const target = fakeTarget()
    const server = await serve(target, { heartbeatMs: 20 })
    const res = await fetch(`${server.url}/events?from=0`, { headers: AUTH })
    expect(res.headers.get('content-type')).toBe('application/x-ndjson')
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^\{\}\n/)
    await reader.cancel()

    const { events } = collect(remote(target, server.url))
    await new Promise(resolve => setTimeout(resolve, 100))
    log(target, 'after heartbeats')
    await vi.waitFor(() => { expect(events.map(e => e.seq)).toEqual([0]) })
  })

  it('resumes after the connection is cut, from the last seq + 1, without duplicates', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const relay = await cuttableRelay(server.port)
    const { events } = collect(remote(target, relay.url))
    log(target, '0')
    log(target, '1')
    await vi.waitFor(() => { expect(events).toHaveLength(2) })

    relay.cut()
    log(target, '2 emitted while cut')
    log(target, '3 emitted while cut')
    await vi.waitFor(() => { expect(events).toHaveLength(4) })
    log(target, '4')
    await vi.waitFor(() => { expect(events).toHaveLength(5) })

    expect(events.map(e => e.seq)).toEqual([0, 1, 2, 3, 4])
    expect(relay.connections()).toBeGreaterThanOrEqual(2)
  })

  it('resumes when the control server itself restarts on the same port', async () => {
    const target = fakeTarget()
    const first = await serveControl(target, { token: TOKEN })
    const { events } = collect(remote(target, first.url, { reconnectDeadlineMs: 10_000 }))
    log(target, '0')
    await vi.waitFor(() => { expect(events).toHaveLength(1) })

    await first.close()
    log(target, '1 emitted while down')
    await serve(target, { port: first.port })
    log(target, '2')
    await vi.waitFor(() => { expect(events).toHaveLength(3) })
    expect(events.map(e => e.seq)).toEqual([0, 1, 2])
  })

  it('gives up reconnecting after the deadline and says so', async () => {
    const target = fakeTarget()
    const server = await serveControl(target, { token: TOKEN })
    const errors: CommandError[] = []
    const node = remote(target, server.url, { reconnectDeadlineMs: 200 })
    node.subscribe(() => {}, 0, { onError: error => { errors.push(error) } })
    await vi.waitFor(async () => { expect((await fetch(`${server.url}/healthz`, { headers: AUTH })).ok).toBe(true) })
    await server.close()
    await vi.waitFor(() => { expect(errors.map(e => e.code)).toEqual(['unavailable']) }, { timeout: 5_000 })
    expect(errors[0]?.message).toMatch(/gave up reconnecting after 200 ms/)
  })

  it('reopens a stream that goes silent (no heartbeat)', async () => {
    const target = fakeTarget()
    const server = await serve(target, { heartbeatMs: 60_000 })
    const relay = await cuttableRelay(server.port)
    const { events } = collect(remote(target, relay.url, { streamIdleMs: 150 }))
    log(target, '0')
    await vi.waitFor(() => { expect(events).toHaveLength(1) })
    await vi.waitFor(() => { expect(relay.connections()).toBeGreaterThanOrEqual(3) })
    log(target, '1')
    await vi.waitFor(() => { expect(events.map(e => e.seq)).toEqual([0, 1]) })
  })

  it('unsubscribe stops delivery', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const { events, stop } = collect(remote(target, server.url))
    log(target, '0')
    await vi.waitFor(() => { expect(events).toHaveLength(1) })
    stop()
    log(target, '1')
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(events).toHaveLength(1)
  })
})

describe('control channel: teardown', () => {
  it('close() ends open event streams and leaves no listening socket', async () => {
    const target = fakeTarget()
    const server = await serveControl(target, { token: TOKEN })
    const res = await fetch(`${server.url}/events?from=0`, { headers: AUTH })
    const reader = res.body!.getReader()
    const ended = (async () => {
      for (;;) {
        const chunk = await reader.read().catch(() => ({ done: true as const }))
        if (chunk.done) return true
      }
    })()
    // A keep-alive socket left idle by an earlier request must not hold close() up either.
    expect((await fetch(`${server.url}/healthz`, { headers: AUTH })).ok).toBe(true)

    await server.close()
    expect(server.listening).toBe(false)
    expect(await ended).toBe(true)
    await server.close()
    await vi.waitFor(() => { expect(process.getActiveResourcesInfo().filter(r => r === 'TCPServerWrap')).toEqual([]) })
  })

  it('close() via the abort signal, and a closed RemoteNode ends its subscriptions', async () => {
    const target = fakeTarget()
    const closing = new AbortController()
    const server = await serveControl(target, { token: TOKEN, signal: closing.signal })
    const node = new RemoteNode({ name: target.name, role: target.role, url: server.url, token: TOKEN })
    const events: NodeEvent[] = []
    node.subscribe(event => { events.push(event) })
    log(target, '0')
    await vi.waitFor(() => { expect(events).toHaveLength(1) })
    await node.close()
    expect((await rejection(node.call('info', {}))).code).toBe('unavailable')
    closing.abort()
    await vi.waitFor(() => { expect(server.listening).toBe(false) })
  })
})

describe('control channel: authentication (issue 12)', () => {
  /** A raw request, so that the test decides every header (fetch adds its own Host and never sends a forged one). */
  async function raw (port: number, request: string): Promise<{ status: number, text: string }> {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    const text = await new Promise<string>(resolve => {
      let data = ''
      socket.on('data', chunk => { data += String(chunk) })
      socket.on('close', () => { resolve(data) })
      socket.end(request)
    })
    return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text }
  }

  it('refuses commands, the event stream and /healthz without the token or with a wrong one (401), and does not run the command', async () => {
    let shutdowns = 0
    const target = fakeTarget('peer', { shutdown: async () => { shutdowns++; return { ok: true as const } } })
    const server = await serve(target)
    const attempts: Array<Record<string, string>> = [{}, { authorization: `Bearer ${generateControlToken()}` }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]
    for (const headers of attempts) {
      const command = await fetch(`${server.url}/commands/shutdown`, { method: 'POST', headers })
      expect(command.status).toBe(401)
      expect(command.headers.get('www-authenticate')).toMatch(/^Bearer/)
      expect((await command.json() as any).error.code).toBe('unauthorized')
      expect((await fetch(`${server.url}/events?from=0`, { headers })).status).toBe(401)
      expect((await fetch(`${server.url}/healthz`, { headers })).status).toBe(401)
    }
    expect(shutdowns).toBe(0)

    const wrong = new RemoteNode({ name: target.name, role: target.role, url: server.url, token: generateControlToken() })
    stack.use(wrong)
    expect((await rejection(wrong.call('info', {}))).code).toBe('unauthorized')
    const ready = await rejection(RemoteNode.waitUntilReady(server.url, { token: generateControlToken(), timeoutMs: 5_000 }))
    expect(ready.code).toBe('unauthorized')

    expect(await remote(target, server.url).call('shutdown', {})).toEqual({ ok: true })
    expect(shutdowns).toBe(1)
  })

  it('refuses a web page: any Origin, a Host name other than localhost (DNS rebinding), a non-JSON body', async () => {
    const target = fakeTarget()
    const server = await serve(target)
    const auth = `Authorization: Bearer ${TOKEN}\r\n`
    const get = (headers: string): string => `GET /healthz HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`

    expect((await raw(server.port, get(`Host: 127.0.0.1:${server.port}\r\n${auth}`))).status).toBe(200)
    expect((await raw(server.port, get(`Host: localhost:${server.port}\r\n${auth}`))).status).toBe(200)
    // A rebound name reaches the same socket with the attacker's Host; the token would not be known there, but
    // the refusal must not depend on it.
    const rebound = await raw(server.port, get(`Host: attacker.example:${server.port}\r\n${auth}`))
    expect(rebound.status).toBe(403)
    expect(rebound.text).toContain('"forbidden"')
    expect((await raw(server.port, get(`Host: 10.1.2.3:${server.port}\r\n${auth}`))).status).toBe(403)
    expect((await raw(server.port, get(`Host: 127.0.0.1:${server.port}\r\nOrigin: http://attacker.example\r\n${auth}`))).status).toBe(403)
    expect((await raw(server.port, get(`Host: 127.0.0.1:${server.port}\r\nOrigin: null\r\n${auth}`))).status).toBe(403)
    expect((await raw(server.port, get(`Host: 127.0.0.1:${server.port}\r\nSec-Fetch-Site: cross-site\r\n${auth}`))).status).toBe(403)

    // A form post (text/plain) needs no CORS preflight, so a page could send one: the body type alone refuses it.
    const body = '{"bootstrapAddrs":["/ip4/127.0.0.1/tcp/1"]}'
    const form = await raw(server.port, `POST /commands/connectWithTimeout HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
    expect(form.status).toBe(415)
    const json = await raw(server.port, `POST /commands/getDhtRoutingTableSize HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json; charset=utf-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`)
    expect(json.status).toBe(200)
  })

  it('accepts any IP literal as Host only when bound to all addresses (a container behind a published port)', async () => {
    const target = fakeTarget()
    const server = await serve(target, { host: '0.0.0.0' })
    const status = async (host: string): Promise<number> => (await raw(server.port, `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`)).status
    expect(await status('10.1.2.3:7070')).toBe(200)
    expect(await status('[::1]:7070')).toBe(200)
    expect(await status('node.example:7070')).toBe(403)
  })

  it('serveControl refuses to start without a token', async () => {
    await expect(serveControl(fakeTarget(), { token: '' })).rejects.toThrow(/token is required/)
  })
})

describe('control channel: bounded event streams (issue 12)', () => {
  it('tells a reader which events were dropped before it asked, then streams the kept ones', async () => {
    const target = { ...fakeTarget(), log: new EventLog('fake-peer', Date.now, { retention: 5 }) }
    for (let i = 0; i < 12; i++) log(target, `e${i}`)
    const server = await serve(target)
    const res = await fetch(`${server.url}/events?from=0`, { headers: AUTH })
    expect(res.headers.get('x-chiral-first-seq')).toBe('7')
    expect(res.headers.get('x-chiral-retention')).toBe('5')
    const reader = res.body!.getReader()
    let text = ''
    while (text.split('\n').length < 7) text += new TextDecoder().decode((await reader.read()).value)
    await reader.cancel()
    const lines = text.split('\n').filter(l => l !== '').map(l => JSON.parse(l))
    expect(lines[0]).toEqual({ gap: { from: 0, to: 7, retention: 5 } })
    expect(lines.slice(1, 6).map(l => l.seq)).toEqual([7, 8, 9, 10, 11])

    const errors: CommandError[] = []
    const seen: number[] = []
    const node = remote(target, server.url)
    node.subscribe(ev => { seen.push(ev.seq) }, 2, { onError: e => { errors.push(e) } })
    await vi.waitFor(() => { expect(seen).toEqual([7, 8, 9, 10, 11]) })
    expect(errors.map(e => e.message)).toEqual(['node fake-peer dropped events 2–6 before they were read (it keeps the last 5)'])
  })

  it('serves at most maxStreams event streams at once (503 beyond), and frees a slot when a reader leaves', async () => {
    const target = fakeTarget()
    const server = await serve(target, { maxStreams: 2 })
    const first = new AbortController()
    const open = [
      await fetch(`${server.url}/events?from=0`, { headers: AUTH, signal: first.signal }),
      await fetch(`${server.url}/events?from=0`, { headers: AUTH })
    ]
    expect(open.map(r => r.status)).toEqual([200, 200])
    const third = await fetch(`${server.url}/events?from=0`, { headers: AUTH })
    expect(third.status).toBe(503)
    expect((await third.json() as any).error.message).toMatch(/already serves 2 event streams, its limit/)
    first.abort()
    await vi.waitFor(async () => {
      const again = await fetch(`${server.url}/events?from=0`, { headers: AUTH })
      expect(again.status).toBe(200)
      await again.body?.cancel()
    })
    await open[1]!.body?.cancel()
  })

  it('closes a stream whose reader stopped reading, instead of holding its data', async () => {
    const target = fakeTarget()
    // Enough data to fill the socket buffers of a reader that never reads.
    for (let i = 0; i < 8000; i++) log(target, 'x'.repeat(3000))
    const server = await serve(target, { heartbeatMs: 50, stalledStreamMs: 300 })
    const socket = connect(server.port, '127.0.0.1')
    socket.on('error', () => {})
    const closed = new Promise<void>(resolve => socket.once('close', () => { resolve() }))
    socket.write(`GET /events?from=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)
    // Not reading: the kernel's buffers fill, then the server's writes stop being taken.
    socket.pause()
    await new Promise(resolve => setTimeout(resolve, 2_000))
    // A paused socket does not notice the close until it reads again: read what was sent before the cut.
    socket.on('data', () => {})
    socket.resume()
    await closed
    expect(socket.bytesRead).toBeGreaterThan(0)
    expect(socket.bytesRead).toBeLessThan(8000 * 3000)
  })
})
