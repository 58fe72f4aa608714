import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { toxiproxyRequest } from './api.ts'
import { LinkProxies, type Link } from './link-proxies.ts'
import { exchange, patternPayload, startEchoServer, toxiproxyGate, waitUntil, type EchoServer } from './test-support.ts'
import { startToxiproxy, type ToxiproxyServer } from './toxiproxy-server.ts'

const gate = toxiproxyGate('server')

describe.skipIf(gate.skip)(`links through a real Toxiproxy${gate.title}`, () => {
  let server: ToxiproxyServer | undefined
  let echo: EchoServer | undefined
  let proxies: LinkProxies | undefined
  let link: Link

  beforeAll(async () => {
    server = await startToxiproxy()
  })
  afterAll(async () => {
    await server?.close()
  })

  beforeEach(async () => {
    echo = await startEchoServer()
    proxies = new LinkProxies(server!)
    link = await proxies.createLink('peer->boot', { host: '127.0.0.1', port: echo.port })
  })
  afterEach(async () => {
    // Proxies first: closing the echo server under a live proxy only produces noise in the server log.
    await proxies?.disposeAll()
    await echo?.close()
    proxies = undefined
    echo = undefined
  })

  const small = Buffer.from('hello through the proxy')

  it('listens on 127.0.0.1 at a port Toxiproxy picked, under a run-prefixed name', () => {
    expect(link.listen.host).toBe('127.0.0.1')
    expect(link.listen.port).toBeGreaterThan(0)
    expect(link.listen.port).not.toBe(echo!.port)
    expect(link.proxyName).toBe(`${proxies!.runId}.peer-_boot`)
    expect(server!.createdProxies.has(link.proxyName)).toBe(true)
  })

  it('carries a clean round trip', async () => {
    const r = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(r.outcome).toBe('complete')
    expect(r.data.equals(small)).toBe(true)
  })

  it('latency 300 adds at least 300 ms, and removing the toxic takes it away again', async () => {
    const baseline = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(baseline.outcome).toBe('complete')
    expect(baseline.elapsedMs).toBeLessThan(250)

    const name = await link.addToxic({ type: 'latency', latency: 300 })
    expect(link.toxics().map(t => t.name)).toEqual([name])
    const slow = await exchange(link.listen.port, small, { deadlineMs: 5_000 })
    expect(slow.outcome).toBe('complete')
    expect(slow.elapsedMs).toBeGreaterThanOrEqual(300)

    await link.removeToxic(name)
    expect(link.toxics()).toEqual([])
    const again = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(again.outcome).toBe('complete')
    expect(again.elapsedMs).toBeLessThan(250)
  })

  it('toxicity 0 leaves connections untouched', async () => {
    await link.addToxic({ type: 'latency', latency: 2_000, toxicity: 0 })
    const r = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(r.outcome).toBe('complete')
    expect(r.elapsedMs).toBeLessThan(1_000)
  })

  it('timeout 0 blackholes: the read runs into our deadline with nothing received', async () => {
    await link.addToxic({ type: 'timeout', timeout: 0 })
    const r = await exchange(link.listen.port, small, { deadlineMs: 1_000 })
    expect(r.outcome).toBe('deadline')
    expect(r.data.length).toBe(0)
    expect(r.elapsedMs).toBeGreaterThanOrEqual(950)
  })

  it('a disabled link refuses connections (ECONNREFUSED) and works again when re-enabled', async () => {
    await link.setEnabled(false)
    const down = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(down.outcome).toBe('error')
    expect(down.errorCode).toBe('ECONNREFUSED')

    await link.setEnabled(true)
    const up = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(up.outcome).toBe('complete')
  })

  it('reset_peer resets the connection (ECONNRESET)', async () => {
    await link.addToxic({ type: 'reset_peer', timeout: 0 })
    const r = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(r.outcome).toBe('error')
    expect(r.errorCode).toBe('ECONNRESET')
  })

  it('bandwidth slows a 200 KB transfer measurably', async () => {
    const payload = patternPayload(200_000)
    const fast = await exchange(link.listen.port, payload, { deadlineMs: 5_000 })
    expect(fast.outcome).toBe('complete')

    // 200 KB/s over 200 000 bytes (Toxiproxy's KB is 1000 bytes) ≈ 1 s.
    await link.addToxic({ type: 'bandwidth', rate: 200 })
    const slow = await exchange(link.listen.port, payload, { deadlineMs: 10_000 })
    expect(slow.outcome).toBe('complete')
    expect(slow.data.equals(payload)).toBe(true)
    expect(slow.elapsedMs).toBeGreaterThanOrEqual(800)
    expect(slow.elapsedMs).toBeGreaterThan(fast.elapsedMs + 500)
  })

  it('limit_data closes the connection after N bytes', async () => {
    await link.addToxic({ type: 'limit_data', bytes: 1_000 })
    const payload = patternPayload(5_000)
    const r = await exchange(link.listen.port, payload, { deadlineMs: 3_000 })
    expect(r.outcome).toBe('ended')
    expect(r.data.length).toBe(1_000)
    expect(r.data.equals(payload.subarray(0, 1_000))).toBe(true)
  })

  it('slicer delivers every byte, in many small pieces', async () => {
    await link.addToxic({ type: 'slicer', average_size: 64, size_variation: 16, delay: 100 })
    const payload = patternPayload(20_000)
    const r = await exchange(link.listen.port, payload, { deadlineMs: 10_000 })
    expect(r.outcome).toBe('complete')
    expect(r.data.equals(payload)).toBe(true)
    expect(r.chunks).toBeGreaterThan(10)
  })

  it('slow_close holds the close back by its delay', async () => {
    await link.addToxic({ type: 'slow_close', delay: 500 })
    const started = performance.now()
    const r = await exchange(link.listen.port, small, { deadlineMs: 3_000 })
    expect(r.outcome).toBe('complete')
    // exchange() waits for the close after its graceful end; the toxic delays that close.
    const tookMs = performance.now() - started
    expect(tookMs).toBeGreaterThanOrEqual(500)
    // Below exchange()'s own 2 s close deadline: the close did come, late, rather than never.
    expect(tookMs).toBeLessThan(1_900)
  })

  it('bytes() counts real traffic per direction, once the connection has closed', async () => {
    expect(await link.bytes()).toEqual({ upstream: 0, downstream: 0, received: { upstream: 0, downstream: 0 } })
    const payload = patternPayload(12_345)
    const r = await exchange(link.listen.port, payload, { deadlineMs: 3_000 })
    expect(r.outcome).toBe('complete')
    const counted = await waitUntil(async () => (await link.bytes()).downstream === 12_345, 3_000)
    expect(counted).toBe(true)
    expect(await link.bytes()).toEqual({ upstream: 12_345, downstream: 12_345, received: { upstream: 12_345, downstream: 12_345 } })

    // Another link on the same server, never used, still counts nothing: the counters are per proxy.
    const idle = await proxies!.createLink('idle', { host: '127.0.0.1', port: echo!.port })
    expect(await idle.bytes()).toEqual({ upstream: 0, downstream: 0, received: { upstream: 0, downstream: 0 } })
  })

  it('rejects an invalid toxic with a message naming the field and its range, and creates nothing', async () => {
    await expect(link.addToxic({ type: 'latency', latency: -5 })).rejects.toThrow(/latency\.latency must be an integer from 0 to 3600000 ms/)
    await expect(link.addToxic({ type: 'slicer', average_size: 10, size_variation: 10 } as never)).rejects.toThrow(/size_variation must be smaller than slicer\.average_size/)
    const toxics = await toxiproxyRequest(server!.url, 'GET', `/proxies/${link.proxyName}/toxics`)
    expect(toxics).toEqual([])
  })

  it('gives two toxics of one type and stream distinct names (Toxiproxy would refuse the second)', async () => {
    const a = await link.addToxic({ type: 'latency', latency: 10 })
    const b = await link.addToxic({ type: 'latency', latency: 20 })
    expect(a).not.toBe(b)
    await link.clearToxics()
    expect(await toxiproxyRequest(server!.url, 'GET', `/proxies/${link.proxyName}/toxics`)).toEqual([])
  })

  it('keeps two runs apart on one server, and disposeAll removes only its own proxies', async () => {
    const other = new LinkProxies(server!)
    try {
      const twin = await other.createLink('peer->boot', { host: '127.0.0.1', port: echo!.port })
      expect(twin.proxyName).not.toBe(link.proxyName)
      expect((await exchange(twin.listen.port, small, { deadlineMs: 3_000 })).outcome).toBe('complete')

      await proxies!.disposeAll()
      const names = Object.keys(await toxiproxyRequest(server!.url, 'GET', '/proxies') as object)
      expect(names).not.toContain(link.proxyName)
      expect(names).toContain(twin.proxyName)
      expect(server!.createdProxies.has(link.proxyName)).toBe(false)
      expect((await exchange(link.listen.port, small, { deadlineMs: 3_000 })).errorCode).toBe('ECONNREFUSED')
    } finally {
      await other.disposeAll()
    }
  })

  it('refuses a second link with the same name in one run', async () => {
    await expect(proxies!.createLink('peer->boot', { host: '127.0.0.1', port: echo!.port })).rejects.toThrow(/already exists/)
  })
})
