import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { startLoopbackForwarder, waitUntilToxiproxyAnswers } from './toxiproxy.ts'

/** The harness's side of the swarm's Toxiproxy, against plain local HTTP servers (the swarm test runs the real one). */

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function serve (handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  cleanups.push(async () => { server.closeAllConnections(); await new Promise(resolve => { server.close(resolve) }) })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A port nothing listens on: one that was just released. */
async function closedPort (): Promise<string> {
  const server = http.createServer()
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => { server.close(resolve) })
  return `http://127.0.0.1:${port}`
}

describe('waitUntilToxiproxyAnswers', () => {
  it('waits through a front whose Toxiproxy does not answer yet (502), then returns', async () => {
    let calls = 0
    const url = await serve((req, res) => {
      calls++
      res.writeHead(calls < 3 ? 502 : 200, { 'content-type': 'application/json' })
      res.end(calls < 3 ? '{"error":"connect ECONNREFUSED 127.0.0.1:8474"}' : '{"version":"2.12.0"}')
    })
    await waitUntilToxiproxyAnswers(url, 10_000, AbortSignal.timeout(20_000))
    expect(calls).toBe(3)
  })

  it('gives up at its deadline, saying what it last heard', async () => {
    const url = await closedPort()
    const started = Date.now()
    await expect(waitUntilToxiproxyAnswers(url, 600, AbortSignal.timeout(20_000))).rejects.toThrow(/no answer to GET \/version within 600 ms \(last: .+\)/)
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})

describe('startLoopbackForwarder', () => {
  it('listens on loopback and passes requests on with the token, method, path, body and content type', async () => {
    const seen: Array<{ method?: string, url?: string, authorization?: string, type?: string, body: string }> = []
    const target = await serve((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => { body += c.toString() })
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization, type: req.headers['content-type'], body })
        res.writeHead(201, { 'content-type': 'application/json' })
        res.end('{"listen":"10.0.0.5:40000"}')
      })
    })
    const forwarder = await startLoopbackForwarder(target, 'a'.repeat(64), 5_000)
    cleanups.push(async () => { await forwarder.close() })
    expect(new URL(forwarder.url).hostname).toBe('127.0.0.1')
    const res = await fetch(`${forwarder.url}/proxies?x=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"p"}' })
    expect({ status: res.status, body: await res.json() }).toEqual({ status: 201, body: { listen: '10.0.0.5:40000' } })
    expect(seen).toEqual([{ method: 'POST', url: '/proxies?x=1', authorization: `Bearer ${'a'.repeat(64)}`, type: 'application/json', body: '{"name":"p"}' }])
  })

  it('answers 502 naming the swarm\'s Toxiproxy when it cannot be reached', async () => {
    const target = await closedPort()
    const forwarder = await startLoopbackForwarder(target, 'a'.repeat(64), 5_000)
    cleanups.push(async () => { await forwarder.close() })
    const res = await fetch(`${forwarder.url}/version`)
    expect(res.status).toBe(502)
    expect(((await res.json()) as { error: string }).error).toContain(`the swarm's Toxiproxy at ${target}`)
  })
})
