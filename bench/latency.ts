import net from 'node:net'
import { startBlackhole } from '../sim/host/blackhole.ts'
import { LocalNode } from '../nodes/node.ts'
import { LinkProxies, newRunId, startToxiproxy } from '../sim/faults/index.ts'
import { round, summarize, type Summary } from './util.ts'
import { withDeadline } from '../nodes/util.ts'

/**
 * Two peers and a bootstrap (memory transport). A connects, then B connects; the figure is the time from B's
 * connectWithTimeout returning success to the moment each peer has discovered the other (its peer:discovered
 * event: routing-table entry or query result). Deadline 15 s per run (the plan's bidirectional-discovery window).
 */
export async function measureMutualVisibility (opts: { runs: number, seed: number, deadlineMs?: number, initialQuerySelfIntervalMs?: number }): Promise<{ runs: number, visible: number, ms: Summary, samples: number[], failures: string[] }> {
  const deadlineMs = opts.deadlineMs ?? 15_000
  const samples: number[] = []
  const failures: string[] = []
  for (let run = 0; run < opts.runs; run++) {
    const tag = `vis-${opts.seed}-${run}-${opts.initialQuerySelfIntervalMs ?? 'd'}`
    await using stack = new AsyncDisposableStack()
    try {
      const boot = await LocalNode.start({ name: `boot-${tag}`, role: 'bootstrap', transport: 'memory', identitySeed: `boot/${tag}` })
      stack.defer(async () => { await boot.stop() })
      const start = async (name: string): Promise<LocalNode> => {
        const node = await LocalNode.start({ name: `${name}-${tag}`, role: 'peer', transport: 'memory', identitySeed: `${name}/${tag}`, bootstrapAddrs: boot.multiaddrs(), autoMonitor: false,
          ...(opts.initialQuerySelfIntervalMs != null ? { dht: { initialQuerySelfIntervalMs: opts.initialQuerySelfIntervalMs } } : {}) })
        stack.defer(async () => { await node.stop() })
        return node
      }
      const a = await start('A')
      const b = await start('B')
      const seen = { ab: 0, ba: 0 }
      let resolveBoth: () => void = () => {}
      const both = new Promise<void>(resolve => { resolveBoth = resolve })
      const check = (): void => { if (seen.ab > 0 && seen.ba > 0) resolveBoth() }
      stack.defer(a.subscribe(ev => { if (ev.type === 'peer:discovered' && ev.peerId === b.peerId.toString() && seen.ab === 0) { seen.ab = performance.now(); check() } }))
      stack.defer(b.subscribe(ev => { if (ev.type === 'peer:discovered' && ev.peerId === a.peerId.toString() && seen.ba === 0) { seen.ba = performance.now(); check() } }))
      const ra = await a.call('connectWithTimeout', {})
      if (!ra.success) throw new Error(`A could not connect: ${ra.error?.message ?? 'unknown'}`)
      const rb = await b.call('connectWithTimeout', {})
      if (!rb.success) throw new Error(`B could not connect: ${rb.error?.message ?? 'unknown'}`)
      const t0 = performance.now()
      await withDeadline(both, deadlineMs, `mutual visibility: no answer within ${deadlineMs} ms`)
      samples.push(round(Math.max(seen.ab, seen.ba, t0) - t0, 1))
    } catch (err) {
      failures.push(`run ${run}: ${(err as Error).message}`)
    }
  }
  return { runs: opts.runs, visible: samples.length, ms: summarize(samples), samples, failures }
}

/**
 * The plan's connection timeout against a TCP blackhole (accepts, never answers): the duration connectWithTimeout
 * reports and the wall time around the call, against the configured timeout. Runs are concurrent (independent
 * nodes and blackholes), so a 10 s timeout costs ~10 s however many runs.
 */
export async function measureConnectTimeout (opts: { runs: number, seed: number, timeoutMs?: number }): Promise<{
  configuredMs: number, runs: number, timedOut: number, reportedMs: Summary, wallMs: Summary, reportedErrorMs: Summary, categories: string[]
}> {
  const configuredMs = opts.timeoutMs ?? 10_000
  const one = async (run: number): Promise<{ reported: number, wall: number, category: string }> => {
    await using stack = new AsyncDisposableStack()
    const hole = await startBlackhole({ transport: 'tcp', name: `bh-${opts.seed}-${run}` })
    stack.defer(async () => { await hole.close() })
    const node = await LocalNode.start({
      name: `to-${opts.seed}-${run}`, role: 'peer', transport: 'tcp', identitySeed: `timeout/${opts.seed}/${run}`,
      bootstrapAddrs: [hole.multiaddr], autoMonitor: false, timing: { connectionTimeoutMs: configuredMs }
    })
    stack.defer(async () => { await node.stop() })
    const t = performance.now()
    const r = await withDeadline(node.call('connectWithTimeout', {}), configuredMs + 20_000, `connectWithTimeout against a blackhole: no answer within ${configuredMs + 20_000} ms`)
    const wall = performance.now() - t
    const attempt = r.attempts[0]
    return { reported: attempt?.durationMs ?? -1, wall: round(wall, 1), category: attempt?.outcome ?? 'none' }
  }
  const results = await Promise.all(Array.from({ length: opts.runs }, async (_v, i) => await one(i)))
  const timedOut = results.filter(r => r.category === 'timeout')
  return {
    configuredMs,
    runs: opts.runs,
    timedOut: timedOut.length,
    reportedMs: summarize(results.map(r => r.reported)),
    wallMs: summarize(results.map(r => r.wall)),
    reportedErrorMs: summarize(results.map(r => r.reported - configuredMs)),
    categories: [...new Set(results.map(r => r.category))]
  }
}

/** A TCP echo server on loopback; closes every socket on close(). */
async function startEcho (): Promise<{ port: number, close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer(s => {
    sockets.add(s)
    s.setNoDelay(true)
    s.on('error', () => {})
    s.on('close', () => { sockets.delete(s) })
    s.pipe(s)
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}

/** Sequential round trips of `size` bytes over one connection; returns each in milliseconds. */
async function roundTrips (port: number, samples: number, size: number): Promise<number[]> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
  try {
    await withDeadline(new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) }), 5_000, `connect to 127.0.0.1:${port}: no answer within 5000 ms`)
    const payload = Buffer.alloc(size, 7)
    const out: number[] = []
    for (let i = 0; i < samples; i++) {
      const t = process.hrtime.bigint()
      await withDeadline(new Promise<void>((resolve, reject) => {
        let got = 0
        const onData = (chunk: Buffer): void => {
          got += chunk.length
          if (got >= size) { socket.off('data', onData); socket.off('error', reject); resolve() }
        }
        socket.on('data', onData)
        socket.once('error', reject)
        socket.write(payload)
      }), 5_000, 'echo round trip: no answer within 5000 ms')
      out.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    return out
  } finally {
    socket.destroy()
  }
}

/**
 * The round trip a clean Toxiproxy link adds: a small TCP echo directly and through a proxy (no toxics), many
 * samples each, interleaved in blocks so drift in machine load hits both alike. The first samples are warm-up.
 */
export async function measureToxiproxyOverhead (opts: { samples: number, size?: number }): Promise<{
  samples: number, size: number, toxiproxyVersion: string, directMs: Summary, proxiedMs: Summary, addedMedianMs: number | null, addedP90Ms: number | null, ratioMedian: number | null
}> {
  const size = opts.size ?? 64
  await using stack = new AsyncDisposableStack()
  const echo = await startEcho()
  stack.defer(echo.close)
  const server = stack.use(await startToxiproxy())
  const proxies = stack.use(new LinkProxies(server, { runId: newRunId() }))
  const link = await proxies.createLink('bench-echo', { host: '127.0.0.1', port: echo.port })
  const direct: number[] = []
  const proxied: number[] = []
  const warm = 50
  await roundTrips(echo.port, warm, size)
  await roundTrips(link.listen.port, warm, size)
  const blocks = 10
  const per = Math.ceil(opts.samples / blocks)
  for (let b = 0; b < blocks; b++) {
    direct.push(...await roundTrips(echo.port, per, size))
    proxied.push(...await roundTrips(link.listen.port, per, size))
  }
  const d = summarize(direct.map(x => round(x, 4)))
  const p = summarize(proxied.map(x => round(x, 4)))
  return {
    samples: direct.length,
    size,
    toxiproxyVersion: server.version,
    directMs: d,
    proxiedMs: p,
    addedMedianMs: d.p50 != null && p.p50 != null ? round(p.p50 - d.p50, 4) : null,
    addedP90Ms: d.p90 != null && p.p90 != null ? round(p.p90 - d.p90, 4) : null,
    ratioMedian: d.p50 != null && p.p50 != null && d.p50 > 0 ? round(p.p50 / d.p50, 2) : null
  }
}
