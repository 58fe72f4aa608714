import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeConfigSchema } from '../config.ts'
import { ChildNode } from '../../sim/host/child.ts'
import { createPinger, probePort, tcpHostPort } from './probes.ts'
import type { SupervisorEvent } from './schemas.ts'
import { Supervisor, type Clock, type OperatorAlert, type ProbeResult, type SupervisedTarget } from './supervisor.ts'
import { freePort } from '../../sim/host/free-port.ts'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => {})
})

function tempDir (): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'chiral-supervisor-test-'))
  cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

const T0 = Date.UTC(2025, 0, 1)
const MIN = 60_000

/** Sleeping advances time instantly: a 10-minute restart window passes in microseconds. */
function fakeClock (start = T0): Clock & { advance: (ms: number) => void, set: (at: number) => void } {
  let now = start
  return {
    now: () => now,
    sleep: async (ms, signal) => {
      signal.throwIfAborted()
      now += ms
      // Yield to the event loop so a running loop can be stopped.
      await new Promise(resolve => setImmediate(resolve))
    },
    advance: ms => { now += ms },
    set: at => { now = at }
  }
}

/** A bootstrap whose health the test sets; `restart` counts and applies `afterRestart`. */
function fakeTarget (init: { healthy?: boolean, afterRestart?: 'healthy' | 'crashes', failing?: 'process' | 'port' | 'dht' } = {}) {
  const state = { healthy: init.healthy ?? true, restarts: 0, since: undefined as number | undefined, failing: init.failing ?? 'process', afterRestart: init.afterRestart ?? 'healthy' }
  const probe = (name: 'process' | 'port' | 'dht'): ProbeResult => state.healthy || state.failing !== name
    ? { ok: true, detail: `${name} fine`, ...(name === 'dht' ? { latencyMs: 3 } : {}) }
    : { ok: false, detail: `${name} broken`, ...(state.since != null ? { since: state.since } : {}) }
  const target: SupervisedTarget = {
    name: 'boot',
    checkProcess: async () => probe('process'),
    checkPort: async () => probe('port'),
    checkDht: async () => probe('dht'),
    restart: async () => {
      state.restarts++
      state.healthy = state.afterRestart === 'healthy'
    }
  }
  return { target, state }
}

function supervisor (target: SupervisedTarget, historyFile: string, clock: Clock, extra: { alerts?: OperatorAlert[], events?: SupervisorEvent[], warnings?: string[] } = {}): Supervisor {
  const s = new Supervisor({
    target,
    historyFile,
    clock,
    onAlert: alert => { extra.alerts?.push(alert) },
    warn: m => { extra.warnings?.push(m) }
  })
  if (extra.events != null) s.subscribe(e => { extra.events?.push(e) })
  cleanups.push(async () => { await s.stop() })
  return s
}

describe('Supervisor: what failed, and when', () => {
  it('names a process whose exit is heard of only after its port refused, with the exit time', async () => {
    const clock = fakeClock()
    const exitedAt = T0 - 40
    // The port refuses at once; the process probe learns of the exit one asking later (a loaded machine's order).
    let processAsks = 0
    const target: SupervisedTarget = {
      name: 'boot',
      checkProcess: async () => ++processAsks === 1 ? { ok: true, detail: 'pid 1' } : { ok: false, detail: 'exited (signal SIGKILL)', since: exitedAt },
      checkPort: async () => ({ ok: false, detail: 'connection refused' }),
      checkDht: async () => ({ ok: false, detail: 'not reached' }),
      restart: async () => {}
    }
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock)
    await s.checkOnce()
    expect(s.history().incident).toMatchObject({ failedAt: exitedAt, failedAtExact: true, reason: 'process check failed: exited (signal SIGKILL)' })
  })

  it('keeps a port failure of a live process as it is', async () => {
    const clock = fakeClock()
    const { target } = fakeTarget({ healthy: false, failing: 'port', afterRestart: 'crashes' })
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock)
    await s.checkOnce()
    expect(s.history().incident).toMatchObject({ failedAt: T0, failedAtExact: false, reason: 'port check failed: port broken' })
  })
})

describe('Supervisor: the 3-restarts-in-10-minutes rule', () => {
  it('restarts a crash-looping bootstrap 3 times, alerts on the 4th failure, then stops restarting', async () => {
    const clock = fakeClock()
    const { target, state } = fakeTarget({ healthy: false, afterRestart: 'crashes' })
    const alerts: OperatorAlert[] = []
    const events: SupervisorEvent[] = []
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock, { alerts, events })

    const actions = []
    for (let i = 0; i < 6; i++) {
      clock.set(T0 + i * MIN)
      actions.push((await s.checkOnce()).action)
    }
    expect(actions).toEqual(['restarted', 'restarted', 'restarted', 'alerted', 'suppressed', 'suppressed'])
    expect(state.restarts).toBe(3)
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ node: 'boot', restartsInWindow: 3, windowMs: 600_000 })
    expect(events.filter(e => e.type === 'restart').map(e => e.type === 'restart' && e.restartsInWindow)).toEqual([1, 2, 3])
    expect(events.filter(e => e.type === 'alert')).toHaveLength(1)
    expect(s.alerted).toBe(true)
    // After the alert the failure is still checked and reported: silence would look like health.
    expect(events.at(-1)).toMatchObject({ type: 'check', ok: false })
  })

  it('counts only restarts within the last 10 minutes: 3 spread over more than 10 minutes never alert', async () => {
    const clock = fakeClock()
    const { target, state } = fakeTarget({ healthy: false, afterRestart: 'crashes' })
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock)
    const actions = []
    // Restarts at 0, 4, 8 and 12 minutes: at 12 min the one at 0 has left the window (0, 10 min].
    for (const at of [0, 4, 8, 12, 13]) {
      clock.set(T0 + at * MIN)
      actions.push((await s.checkOnce()).action)
    }
    expect(actions).toEqual(['restarted', 'restarted', 'restarted', 'restarted', 'alerted'])
    expect(state.restarts).toBe(4)
  })

  it('resumes restarting with a fresh window once an operator acknowledges the alert', async () => {
    const clock = fakeClock()
    const { target, state } = fakeTarget({ healthy: false, afterRestart: 'crashes' })
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock)
    for (let i = 0; i < 4; i++) { clock.set(T0 + i * MIN); await s.checkOnce() }
    expect(s.alerted).toBe(true)
    s.acknowledge()
    expect(s.alerted).toBe(false)
    expect((await s.checkOnce()).action).toBe('restarted')
    expect(state.restarts).toBe(4)
  })
})

describe('Supervisor: recoveries', () => {
  it('records failedAt (exact when the probe knows it), detectedAt, recoveredAt and automatic', async () => {
    const clock = fakeClock()
    const { target, state } = fakeTarget()
    const events: SupervisorEvent[] = []
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock, { events })
    expect((await s.checkOnce()).action).toBe('none')

    state.healthy = false
    state.since = T0 + 20_000
    clock.set(T0 + MIN)
    expect((await s.checkOnce()).action).toBe('restarted')
    const [recovery] = s.recoveries()
    expect(recovery).toMatchObject({ failedAt: T0 + 20_000, failedAtExact: true, detectedAt: T0 + MIN, automatic: true, restarts: 1, reason: 'process check failed: process broken' })
    // The first check after the restart passes, one recovery poll (1 s) later.
    expect(recovery?.recoveredAt).toBe(T0 + MIN + 1_000)
    expect(events.find(e => e.type === 'recovered')).toMatchObject({ downtimeMs: MIN + 1_000 - 20_000 })
  })

  it('runs the checks in order and stops at the first failure: a hung node fails only the DHT check', async () => {
    const clock = fakeClock()
    const { target, state } = fakeTarget({ healthy: false, failing: 'dht' })
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock)
    const result = await s.checkOnce()
    expect(result.checks.map(c => [c.name, c.ok])).toEqual([['process', true], ['port', true], ['dht', false]])
    expect(state.restarts).toBe(1)
    expect(s.recoveries()[0]).toMatchObject({ failedAtExact: false, failedAt: T0, automatic: true })
  })

  it('calls a recovery after the alert not automatic', async () => {
    const clock = fakeClock()
    const { target, state } = fakeTarget({ healthy: false, afterRestart: 'crashes' })
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock)
    for (let i = 0; i < 4; i++) { clock.set(T0 + i * MIN); await s.checkOnce() }
    state.healthy = true // an operator fixed it by hand
    clock.set(T0 + 5 * MIN)
    await s.checkOnce()
    expect(s.recoveries()).toEqual([expect.objectContaining({ automatic: false, restarts: 3, recoveredAt: T0 + 5 * MIN })])
  })

  it('cuts off a probe that never answers at the ping deadline', async () => {
    const { target } = fakeTarget()
    const hanging: SupervisedTarget = { ...target, checkDht: async () => await new Promise<ProbeResult>(() => {}), restart: async () => {} }
    const s = new Supervisor({ target: hanging, historyFile: path.join(tempDir(), 'h.json'), config: { pingTimeoutMs: 100, restartTimeoutMs: 50, recoveryPollMs: 10 } })
    cleanups.push(async () => { await s.stop() })
    const started = Date.now()
    const result = await s.checkOnce()
    expect(result.checks.at(-1)).toMatchObject({ name: 'dht', ok: false, detail: 'no answer within 100 ms' })
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('loops on its interval until stopped', async () => {
    const clock = fakeClock()
    const { target } = fakeTarget()
    const events: SupervisorEvent[] = []
    const s = supervisor(target, path.join(tempDir(), 'h.json'), clock, { events })
    s.start()
    while (events.length < 5) await new Promise(resolve => setImmediate(resolve))
    await s.stop()
    expect(s.running).toBe(false)
    const times = events.map(e => e.at - T0)
    expect(times.slice(0, 5)).toEqual([0, 60_000, 120_000, 180_000, 240_000])
  })
})

describe('Supervisor: the history file', () => {
  it('survives a supervisor restart: the restart count and the alert carry over', async () => {
    const clock = fakeClock()
    const file = path.join(tempDir(), 'nested', 'boot.json')
    const { target, state } = fakeTarget({ healthy: false, afterRestart: 'crashes' })
    const first = supervisor(target, file, clock)
    for (let i = 0; i < 3; i++) { clock.set(T0 + i * MIN); await first.checkOnce() }
    await first.stop()
    expect(JSON.parse(readFileSync(file, 'utf8')).restarts).toHaveLength(3)

    // A new supervisor process on the same file: the three restarts are still inside the window.
    const alerts: OperatorAlert[] = []
    const second = supervisor(target, file, clock, { alerts })
    expect(second.restartsInWindow()).toBe(3)
    clock.set(T0 + 3 * MIN)
    expect((await second.checkOnce()).action).toBe('alerted')
    expect(state.restarts).toBe(3)
    expect(alerts).toHaveLength(1)
    await second.stop()

    const third = supervisor(target, file, clock)
    expect(third.alerted).toBe(true)
    clock.set(T0 + 30 * MIN)
    expect((await third.checkOnce()).action).toBe('suppressed')

    // An incident open when the supervisor went away is closed by the next one.
    state.healthy = true
    await third.checkOnce()
    expect(third.recoveries()).toEqual([expect.objectContaining({ detectedAt: T0, restarts: 3, automatic: false })])
  })

  it('moves an unreadable history file aside instead of refusing to supervise', () => {
    const dir = tempDir()
    const file = path.join(dir, 'boot.json')
    writeFileSync(file, '{ not json')
    const warnings: string[] = []
    const s = supervisor(fakeTarget().target, file, fakeClock(), { warnings })
    expect(s.restartsInWindow()).toBe(0)
    expect(warnings[0]).toMatch(/not a supervisor history.*moved it to/)
    expect(readdirSync(dir).some(f => f.startsWith('boot.json.unreadable-'))).toBe(true)
    expect(existsSync(file)).toBe(false)
  })
})

describe('Supervisor with a real bootstrap process', () => {
  it('detects a SIGKILLed bootstrap and a frozen one, restarts each, and the bootstrap answers ping again', async () => {
    const port = await freePort()
    const config = NodeConfigSchema.parse({
      name: 'sup-boot', role: 'bootstrap', transport: 'tcp', identitySeed: `supervisor-test-${process.pid}`,
      listen: [`/ip4/127.0.0.1/tcp/${port}`], timing: { timeScale: 0.01 }
    })
    let child = await ChildNode.spawn({ config })
    cleanups.push(async () => { await child.kill() })
    const address = child.ready.multiaddrs[0]!
    const { host } = tcpHostPort(address)
    const pinger = await createPinger()
    cleanups.push(async () => { await pinger.close() })

    const events: SupervisorEvent[] = []
    const s = new Supervisor({
      target: {
        name: config.name,
        checkProcess: async () => child.exited
          ? { ok: false, detail: `exited (${child.exitStatus})`, ...(child.exitedAt != null ? { since: child.exitedAt } : {}) }
          : { ok: true, detail: `pid ${child.pid}` },
        checkPort: async signal => await probePort(host, port, signal),
        checkDht: async signal => await pinger.ping(address, signal),
        restart: async signal => {
          await child.kill()
          child = await ChildNode.spawn({ config, signal })
        }
      },
      // The plan's schedule compressed 100×; the ping deadline is real time (never scaled): 2 s keeps the frozen
      // case quick and still holds on a loaded CI machine.
      config: { timeScale: 0.01, pingTimeoutMs: 2_000 },
      historyFile: path.join(tempDir(), 'sup-boot.json')
    })
    cleanups.push(async () => { await s.stop() })
    s.subscribe(e => { events.push(e) })
    s.start()
    const deadline = AbortSignal.timeout(50_000)
    await until(() => events.some(e => e.type === 'check' && e.ok), deadline)

    const killed = child
    process.kill(killed.pid, 'SIGKILL')
    await until(() => s.recoveries().length === 1, deadline)
    expect(child.pid).not.toBe(killed.pid)
    expect(s.recoveries()[0]).toMatchObject({ automatic: true, failedAtExact: true, restarts: 1 })
    await expectPing(address)

    // Frozen: the process lives and the kernel still accepts on its port; only the libp2p ping tells.
    const frozen = child
    frozen.sendSignal('SIGSTOP')
    await until(() => s.recoveries().length === 2, deadline)
    expect(frozen.exitStatus).toBe('signal SIGKILL')
    const frozenIncident = events.filter(e => e.type === 'check' && !e.ok).at(-1)
    expect(frozenIncident).toMatchObject({ checks: [{ name: 'process', ok: true }, { name: 'port', ok: true }, { name: 'dht', ok: false }] })
    await expectPing(address)
    await s.stop()
  })
})

/** The test's own pinger: the supervisor's keeps probing meanwhile. */
async function expectPing (address: string): Promise<void> {
  await using pinger = await createPinger()
  const pong = await pinger.ping(address, AbortSignal.timeout(5_000))
  expect(pong.ok, pong.detail).toBe(true)
}

async function until (condition: () => boolean, signal: AbortSignal): Promise<void> {
  while (!condition()) {
    signal.throwIfAborted()
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}
