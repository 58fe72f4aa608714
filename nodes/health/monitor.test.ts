import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { startBlackhole } from '../../sim/host/blackhole.ts'
import { PlanTimingSchema, scaled } from '../config.ts'
import type { PlanTiming } from '../config.ts'
import { NodeEventBodySchema } from '../events.ts'
import type { NodeEventBody } from '../events.ts'
import { MonitorStateSchema } from '../schemas.ts'
import type { BootstrapHealth } from '../schemas.ts'
import { BootstrapMonitor, statusOf } from './monitor.ts'

const ADDR = '/memory/boot/p2p/12D3KooWBootstrap'
const PLAN: PlanTiming = PlanTimingSchema.parse({})

const up = (latencyMs: number | null): BootstrapHealth => ({
  address: ADDR, isReachable: true, latencyMs, lastCheckTimestamp: Date.now(), errorMessage: null, peerCountViaBootstrap: 3
})
const down = (errorMessage = 'Error: connection refused'): BootstrapHealth => ({
  address: ADDR, isReachable: false, latencyMs: null, lastCheckTimestamp: Date.now(), errorMessage, peerCountViaBootstrap: 0
})

type Check = (address: string, signal: AbortSignal) => Promise<BootstrapHealth>

let monitors: BootstrapMonitor[] = []

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 })
})
afterEach(() => {
  for (const m of monitors) m.stop()
  monitors = []
  vi.useRealTimers()
})

function setup (opts: { timing?: Partial<PlanTiming>, check?: Check } = {}): { monitor: BootstrapMonitor, events: NodeEventBody[], of: <T extends NodeEventBody['type']>(type: T) => Array<Extract<NodeEventBody, { type: T }>> } {
  const events: NodeEventBody[] = []
  const monitor = new BootstrapMonitor({
    timing: { ...PLAN, ...opts.timing },
    check: opts.check ?? (async () => up(50)),
    // Every event must satisfy the contract the runner parses.
    emit: body => { events.push(NodeEventBodySchema.parse(body)) }
  })
  monitors.push(monitor)
  const of = <T extends NodeEventBody['type']>(type: T): Array<Extract<NodeEventBody, { type: T }>> =>
    events.filter((e): e is Extract<NodeEventBody, { type: T }> => e.type === type)
  return { monitor, events, of }
}

describe('status (Solution #2.6)', () => {
  it.each([
    [0, 'green'], [199, 'green'], [200, 'yellow'], [350, 'yellow'], [500, 'yellow'], [501, 'yellow'], [10_000, 'yellow']
  ] as const)('latency %i ms → %s', (latency, status) => {
    expect(statusOf(up(latency), PLAN)).toBe(status)
    const { monitor } = setup()
    monitor.record(up(latency))
    expect(monitor.state().status).toBe(status)
  })

  it('unreachable → red; reachable without a latency → green; unknown before the first check', () => {
    const { monitor } = setup()
    expect(monitor.state()).toMatchObject({ status: 'unknown', running: false, address: null, uptimePercent: null, history: [] })
    monitor.record(down())
    expect(monitor.state().status).toBe('red')
    monitor.record(up(null))
    expect(monitor.state().status).toBe('green')
  })

  it('emits health:check for every check and health:status only on a change', () => {
    const { monitor, of } = setup()
    for (const h of [up(100), up(150), up(250), up(260), down(), down(), up(10)]) monitor.record(h)
    expect(of('health:check').map(e => e.status)).toEqual(['green', 'green', 'yellow', 'yellow', 'red', 'red', 'green'])
    expect(of('health:status').map(e => [e.from, e.to])).toEqual([['unknown', 'green'], ['green', 'yellow'], ['yellow', 'red'], ['red', 'green']])
    expect(of('health:status').every(e => e.address === ADDR)).toBe(true)
  })

  it('orders the events of one check: check, status change, then the consequence', () => {
    const { monitor, events } = setup({ timing: { unreachableAlertMs: 100 } })
    monitor.record(down())
    vi.advanceTimersByTime(100)
    monitor.record(down())
    events.length = 0
    monitor.record(up(20))
    expect(events.map(e => e.type)).toEqual(['health:check', 'health:status', 'health:recovered'])
  })
})

describe('high-latency warning (Solution #2.7)', () => {
  it('warns once on the 3rd consecutive check above 500 ms, and re-arms after a check at or below it', () => {
    const { monitor, of } = setup()
    monitor.record(up(501))
    monitor.record(up(501))
    expect(of('health:warning')).toHaveLength(0)
    expect(monitor.state()).toMatchObject({ consecutiveHighLatency: 2, warningActive: false })
    monitor.record(up(900))
    expect(of('health:warning')).toEqual([expect.objectContaining({ address: ADDR, consecutive: 3, latencyMs: 900 })])
    expect(of('health:warning')[0]?.message).toMatch(/network may be slow/i)
    monitor.record(up(700))
    monitor.record(up(800))
    expect(of('health:warning')).toHaveLength(1)
    expect(monitor.state()).toMatchObject({ consecutiveHighLatency: 5, warningActive: true })

    monitor.record(up(500)) // exactly the threshold is not "above" it: re-arms
    expect(monitor.state()).toMatchObject({ consecutiveHighLatency: 0, warningActive: false })
    monitor.record(up(501))
    monitor.record(up(501))
    expect(of('health:warning')).toHaveLength(1)
    monitor.record(up(501))
    expect(of('health:warning')).toHaveLength(2)
  })

  it('does not warn at exactly 500 ms, however many times', () => {
    const { monitor, of } = setup()
    for (let i = 0; i < 10; i++) monitor.record(up(500))
    expect(of('health:warning')).toHaveLength(0)
    expect(monitor.state().consecutiveHighLatency).toBe(0)
  })

  it('an unreachable check breaks the run but does not re-arm an active warning', () => {
    const { monitor, of } = setup()
    monitor.record(up(600))
    monitor.record(up(600))
    monitor.record(down())
    monitor.record(up(600))
    monitor.record(up(600))
    expect(of('health:warning')).toHaveLength(0)
    monitor.record(up(600))
    expect(of('health:warning')).toHaveLength(1)
    monitor.record(down())
    for (let i = 0; i < 3; i++) monitor.record(up(600))
    expect(of('health:warning')).toHaveLength(1)
  })

  it('honours highLatencyConsecutiveChecks', () => {
    const { monitor, of } = setup({ timing: { highLatencyConsecutiveChecks: 1 } })
    monitor.record(up(501))
    expect(of('health:warning')).toHaveLength(1)
  })
})

describe('unreachable alert and recovery (Solution #2.7)', () => {
  it('alerts once when unreachable for 2 minutes since the first failed check, then reports recovery', () => {
    const { monitor, of } = setup()
    monitor.record(up(50))
    vi.advanceTimersByTime(30_000)
    const firstFailure = Date.now()
    monitor.record(down())
    expect(monitor.state()).toMatchObject({ status: 'red', unreachableSince: firstFailure, alertActive: false })
    for (const step of [30_000, 30_000, 30_000, 29_999]) {
      vi.advanceTimersByTime(step)
      monitor.record(down())
    }
    expect(of('health:alert')).toHaveLength(0) // 119 999 ms
    vi.advanceTimersByTime(1)
    monitor.record(down())
    expect(of('health:alert')).toEqual([expect.objectContaining({ address: ADDR, unreachableForMs: 120_000 })])
    expect(of('health:alert')[0]?.message).toMatch(/unreachable/i)
    expect(monitor.state().alertActive).toBe(true)
    vi.advanceTimersByTime(30_000)
    monitor.record(down())
    expect(of('health:alert')).toHaveLength(1)

    vi.advanceTimersByTime(30_000)
    monitor.record(up(80))
    expect(of('health:recovered')).toEqual([{ type: 'health:recovered', address: ADDR, downtimeMs: 180_000 }])
    expect(monitor.state()).toMatchObject({ status: 'green', unreachableSince: null, alertActive: false })
  })

  it('re-arms the alert for the next outage', () => {
    const { monitor, of } = setup({ timing: { unreachableAlertMs: 60_000 } })
    for (let round = 1; round <= 2; round++) {
      monitor.record(down())
      vi.advanceTimersByTime(60_000)
      monitor.record(down())
      monitor.record(up(10))
      expect(of('health:alert')).toHaveLength(round)
      expect(of('health:recovered')).toHaveLength(round)
    }
  })

  it('reports recovery with its downtime even before the alert delay', () => {
    const { monitor, of } = setup()
    monitor.record(down())
    vi.advanceTimersByTime(30_000)
    monitor.record(up(300))
    expect(of('health:alert')).toHaveLength(0)
    expect(of('health:recovered')).toEqual([expect.objectContaining({ downtimeMs: 30_000 })])
  })

  it('reports no recovery when nothing was down', () => {
    const { monitor, of } = setup()
    for (const h of [up(10), up(300), up(900), up(10)]) monitor.record(h)
    expect(of('health:recovered')).toHaveLength(0)
  })
})

describe('history and uptime (Solution #2.3)', () => {
  it('keeps only the last healthHistorySize checks', () => {
    const { monitor } = setup()
    for (let i = 1; i <= 25; i++) monitor.record(up(i))
    const history = monitor.state().history
    expect(history).toHaveLength(20)
    expect(history.map(h => h.latencyMs)).toEqual(Array.from({ length: 20 }, (_, i) => i + 6))
  })

  it('computes uptime over the checks of the last hour, not over the history', () => {
    const { monitor } = setup({ timing: { healthHistorySize: 2 } })
    monitor.record(up(10)) // t = 0
    vi.advanceTimersByTime(30 * 60_000)
    monitor.record(down()) // t = 30 min
    monitor.record(down())
    monitor.record(up(10))
    expect(monitor.state().uptimePercent).toBe(50)
    vi.advanceTimersByTime(30 * 60_000) // t = 60 min: the first check leaves the window
    expect(monitor.state().uptimePercent).toBeCloseTo(100 / 3)
    vi.advanceTimersByTime(30 * 60_000) // t = 90 min: nothing left in the window
    expect(monitor.state().uptimePercent).toBeNull()
    expect(monitor.state().history).toHaveLength(2)
  })

  it('returns a state that satisfies MonitorStateSchema and cannot be mutated from outside', () => {
    const { monitor } = setup()
    monitor.record(up(10))
    const state = monitor.state()
    expect(MonitorStateSchema.parse(state)).toEqual(state)
    state.history.length = 0
    expect(monitor.state().history).toHaveLength(1)
  })
})

describe('scheduling (Solution #2.5)', () => {
  it('checks at once, then every healthCheckIntervalMs, and stop() leaves no timer behind', async () => {
    const check = vi.fn<Check>(async () => up(40))
    const { monitor, of } = setup({ check })
    monitor.start(ADDR)
    expect(of('monitor:started')).toEqual([{ type: 'monitor:started', address: ADDR, intervalMs: 30_000 }])
    expect(check).toHaveBeenCalledTimes(1)
    expect(check.mock.calls[0]?.[0]).toBe(ADDR)
    await vi.advanceTimersByTimeAsync(0)
    expect(of('health:check')).toHaveLength(1)
    expect(monitor.state()).toMatchObject({ running: true, status: 'green', address: ADDR })

    await vi.advanceTimersByTimeAsync(29_999)
    expect(check).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(check).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(check).toHaveBeenCalledTimes(4)
    expect(of('health:check')).toHaveLength(4)

    monitor.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(of('monitor:stopped')).toHaveLength(1)
    expect(monitor.state().running).toBe(false)
    monitor.stop()
    expect(of('monitor:stopped')).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(120_000)
    expect(check).toHaveBeenCalledTimes(4)
  })

  it('works with scaled plan timing', async () => {
    const check = vi.fn<Check>(async () => up(40))
    const { monitor, of } = setup({ check, timing: scaled(PlanTimingSchema.parse({ timeScale: 0.01 })) })
    monitor.start(ADDR)
    expect(of('monitor:started')[0]?.intervalMs).toBe(300)
    await vi.advanceTimersByTimeAsync(900)
    expect(check).toHaveBeenCalledTimes(4)
  })

  it('records a check that throws as unreachable with its error', async () => {
    const { monitor, of } = setup({ check: async () => { throw new Error('connection error 127.0.0.1:1: connect ECONNREFUSED') } })
    monitor.start(ADDR)
    await vi.advanceTimersByTimeAsync(0)
    expect(of('health:check')[0]?.health).toMatchObject({
      address: ADDR, isReachable: false, latencyMs: null, errorMessage: 'Error: connection error 127.0.0.1:1: connect ECONNREFUSED', peerCountViaBootstrap: 0
    })
    expect(monitor.state().status).toBe('red')
  })

  it('records a check that misses healthPingTimeoutMs as unreachable, even if it ignores its signal', async () => {
    let seen: AbortSignal | undefined
    const { monitor, of } = setup({ check: async (_address, signal) => { seen = signal; return await new Promise<never>(() => {}) } })
    monitor.start(ADDR)
    await vi.advanceTimersByTimeAsync(4_999)
    expect(of('health:check')).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(seen?.aborted).toBe(true)
    expect(of('health:check')[0]?.health).toMatchObject({ isReachable: false, errorMessage: 'no answer within 5000 ms' })
    monitor.stop()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('does not overlap checks when one outlasts the interval', async () => {
    let active = 0
    let maxActive = 0
    const check = vi.fn<Check>(async () => {
      active++
      maxActive = Math.max(maxActive, active)
      await new Promise(resolve => setTimeout(resolve, 250))
      active--
      return up(250)
    })
    const { monitor } = setup({ check, timing: { healthCheckIntervalMs: 100, healthPingTimeoutMs: 1_000 } })
    monitor.start(ADDR)
    await vi.advanceTimersByTimeAsync(1_000)
    expect(maxActive).toBe(1)
    expect(check.mock.calls.length).toBeGreaterThanOrEqual(3)
  })

  it('stop() aborts an in-flight check and records nothing from it', async () => {
    let seen: AbortSignal | undefined
    const { monitor, of } = setup({ check: async (_address, signal) => { seen = signal; return await new Promise<never>(() => {}) } })
    monitor.start(ADDR)
    await vi.advanceTimersByTimeAsync(1_000)
    monitor.stop()
    expect(seen?.aborted).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(of('health:check')).toHaveLength(0)
  })

  it('ignores a result that resolves after stop()', async () => {
    let resolve: ((h: BootstrapHealth) => void) | undefined
    const { monitor, of } = setup({ check: async () => await new Promise<BootstrapHealth>(r => { resolve = r }) })
    monitor.start(ADDR)
    monitor.stop()
    resolve?.(up(10))
    await vi.advanceTimersByTimeAsync(0)
    expect(of('health:check')).toHaveLength(0)
  })

  it('start() on the monitored address is a no-op; on another address it restarts fresh', async () => {
    const check = vi.fn<Check>(async address => ({ ...up(40), address }))
    const { monitor, of } = setup({ check })
    monitor.start(ADDR)
    monitor.start(ADDR)
    expect(of('monitor:started')).toHaveLength(1)
    expect(check).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(0)

    const other = '/memory/boot2/p2p/12D3KooWOther'
    monitor.start(other)
    expect(of('monitor:stopped')).toHaveLength(1)
    expect(of('monitor:started').map(e => e.address)).toEqual([ADDR, other])
    expect(monitor.state()).toMatchObject({ address: other, status: 'unknown', history: [] })
    await vi.advanceTimersByTimeAsync(0)
    expect(monitor.state().history.map(h => h.address)).toEqual([other])
    monitor.stop()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('restarts immediately after stop() even while the old check is still settling', async () => {
    const check = vi.fn<Check>(async (_address, signal) => await new Promise<BootstrapHealth>((resolve, reject) => {
      const timer = setTimeout(() => { resolve(up(10)) }, 100)
      signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason) }, { once: true })
    }))
    const { monitor, of } = setup({ check })
    monitor.start(ADDR)
    monitor.stop()
    monitor.start(ADDR)
    expect(check).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(100)
    expect(of('health:check')).toHaveLength(1)
  })
})

describe('checkNow', () => {
  it('runs one recorded check outside the schedule', async () => {
    const check = vi.fn<Check>(async () => up(250))
    const { monitor, of } = setup({ check })
    monitor.start(ADDR)
    await vi.advanceTimersByTimeAsync(0)
    const health = await monitor.checkNow()
    expect(health.latencyMs).toBe(250)
    expect(check).toHaveBeenCalledTimes(2)
    expect(of('health:check')).toHaveLength(2)
    // The schedule is unchanged: the next scheduled check is still 30 s after start.
    await vi.advanceTimersByTimeAsync(30_000)
    expect(check).toHaveBeenCalledTimes(3)
  })

  it('still works after stop(), without restarting the schedule', async () => {
    const check = vi.fn<Check>(async () => up(30))
    const { monitor } = setup({ check })
    monitor.start(ADDR)
    monitor.stop()
    await expect(monitor.checkNow()).resolves.toMatchObject({ isReachable: true, latencyMs: 30 })
    expect(monitor.state()).toMatchObject({ running: false, status: 'green' })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('is abandoned by stop() like a scheduled check', async () => {
    const { monitor, of } = setup({ check: async () => await new Promise<never>(() => {}) })
    monitor.start(ADDR)
    const pending = monitor.checkNow()
    monitor.stop()
    await expect(pending).rejects.toThrow('monitor stopped')
    expect(of('health:check')).toHaveLength(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('needs an address', async () => {
    const { monitor } = setup()
    await expect(monitor.checkNow()).rejects.toThrow(/call start/)
  })

  it('rejects and records nothing when the caller aborts it', async () => {
    const { monitor, of } = setup({ check: async () => await new Promise<never>(() => {}) })
    monitor.record(up(10))
    const controller = new AbortController()
    const pending = monitor.checkNow(controller.signal)
    controller.abort(new Error('caller gave up'))
    await expect(pending).rejects.toThrow('caller gave up')
    expect(of('health:check')).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('records a timed-out on-demand check as unreachable', async () => {
    const { monitor } = setup({ check: async () => await new Promise<never>(() => {}) })
    monitor.record(up(10))
    const pending = monitor.checkNow()
    await vi.advanceTimersByTimeAsync(5_000)
    await expect(pending).resolves.toMatchObject({ isReachable: false, errorMessage: 'no answer within 5000 ms' })
    expect(monitor.state().status).toBe('red')
  })
})

describe('against real libp2p nodes (real timers)', () => {
  const cleanups: Array<() => Promise<unknown>> = []
  beforeEach(() => { vi.useRealTimers() })
  afterEach(async () => {
    await Promise.allSettled(cleanups.splice(0).reverse().map(async fn => await fn()))
  })

  async function memoryNode (listen: string, privateKey?: PrivateKey): Promise<Libp2p<{ ping: Ping }>> {
    const node = await createLibp2p({
      ...(privateKey != null ? { privateKey } : {}),
      addresses: { listen: [listen] },
      transports: [memory()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { dialTimeout: 30_000, addressDialTimeout: 30_000 },
      services: { ping: ping() }
    })
    cleanups.push(async () => { await node.stop() })
    return node
  }

  /** The check a node would run: a libp2p ping round trip, bounded by the monitor's signal. */
  const pingCheck = (node: Libp2p<{ ping: Ping }>): Check => async (address, signal) => {
    const latencyMs = await node.services.ping.ping(multiaddr(address), { signal })
    return { address, isReachable: true, latencyMs, lastCheckTimestamp: Date.now(), errorMessage: null, peerCountViaBootstrap: 0 }
  }

  it('goes green, red with an alert when the bootstrap stops, and recovers when it returns', async () => {
    const key = await generateKeyPair('Ed25519')
    const listen = `/memory/monitor-boot-${crypto.randomUUID()}`
    let boot = await memoryNode(listen, key)
    const address = boot.getMultiaddrs()[0]?.toString() ?? ''
    const peer = await memoryNode(`/memory/monitor-peer-${crypto.randomUUID()}`)
    const { monitor, of } = setup({
      check: pingCheck(peer),
      timing: { healthCheckIntervalMs: 150, healthPingTimeoutMs: 1_000, unreachableAlertMs: 400 }
    })
    monitor.start(address)
    await vi.waitFor(() => { expect(monitor.state().status).toBe('green') }, { timeout: 5_000, interval: 20 })

    await boot.stop()
    await vi.waitFor(() => { expect(of('health:alert')).toHaveLength(1) }, { timeout: 5_000, interval: 20 })
    expect(of('health:check').find(e => e.status === 'red')?.health.errorMessage).toMatch(/No memory listener found/)

    boot = await memoryNode(listen, key)
    await vi.waitFor(() => { expect(of('health:recovered')).toHaveLength(1) }, { timeout: 5_000, interval: 20 })
    expect(of('health:recovered')[0]?.downtimeMs).toBeGreaterThanOrEqual(400)
    expect(of('health:status').map(e => e.to)).toEqual(['green', 'red', 'green'])
    monitor.stop()
  })

  it('marks a hung bootstrap unreachable at the ping deadline', async () => {
    const hole = await startBlackhole({ transport: 'memory', name: `monitor-hole-${crypto.randomUUID()}` })
    cleanups.push(async () => { await hole.close() })
    const peer = await memoryNode(`/memory/monitor-peer-${crypto.randomUUID()}`)
    const { monitor, of } = setup({ check: pingCheck(peer), timing: { healthCheckIntervalMs: 10_000, healthPingTimeoutMs: 300 } })
    const started = performance.now()
    monitor.start(hole.multiaddr)
    await vi.waitFor(() => { expect(of('health:check')).toHaveLength(1) }, { timeout: 3_000, interval: 10 })
    expect(performance.now() - started).toBeGreaterThanOrEqual(290)
    expect(of('health:check')[0]).toMatchObject({ status: 'red', health: { isReachable: false, errorMessage: 'no answer within 300 ms' } })
    monitor.stop()
  })
})
