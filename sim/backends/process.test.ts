import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeConfigSchema, type NodeConfig } from '../../nodes/config.ts'
import { createPinger } from '../../nodes/supervisor/probes.ts'
import { isProcessAlive } from '../../nodes/supervisor/test-support.ts'
import type { SupervisorEvent } from '../../nodes/supervisor/schemas.ts'
import { ProcessBackend, type ProcessNode } from './process.ts'
import type { StartedNode } from './backend.ts'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})

function backend (): ProcessBackend {
  const b = new ProcessBackend()
  cleanups.push(async () => { await b[Symbol.asyncDispose]() })
  return b
}

const run = `pt-${process.pid}-${Date.now().toString(36)}`

function config (name: string, role: 'bootstrap' | 'peer', extra: Partial<NodeConfig> = {}): NodeConfig {
  return NodeConfigSchema.parse({ name, role, transport: 'tcp', identitySeed: `${run}/${name}`, ...extra })
}

/** Children of this test worker that are chiral nodes (ps, not our own bookkeeping: the point is to catch leaks). */
function childNodePids (): number[] {
  let out = ''
  try {
    out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
  } catch { /* ps exits 1 when there are no children */ }
  return out.split('\n').filter(l => l.includes('nodes/main.ts')).map(l => Number(l.trim().split(/\s+/)[0]))
}

describe('ProcessBackend', () => {
  it('runs a bootstrap and two peers as processes: discovery both ways, kill -9 refuses, nothing left behind', async () => {
    const b = backend()
    const signal = AbortSignal.timeout(55_000)
    const bootConfig = config('boot', 'bootstrap')
    const { listen } = await b.place(bootConfig, signal)
    const boot = await b.startNode({ ...bootConfig, listen }, signal)
    const bootAddr = `${listen[0]}/p2p/${boot.peerId}`
    expect(boot.multiaddrs).toEqual([bootAddr])

    const a = await b.startNode(config('peer-a', 'peer', { bootstrapAddrs: [bootAddr] }), signal)
    const c = await b.startNode(config('peer-c', 'peer', { bootstrapAddrs: [bootAddr] }), signal)
    const pids = [boot, a, c].map(n => (n as ProcessNode).child.pid)
    expect(childNodePids().sort()).toEqual([...pids].sort())

    for (const peer of [a, c]) {
      const result = await peer.handle.call('connectWithTimeout', {}, { signal })
      expect(result.success, JSON.stringify(result.error)).toBe(true)
    }
    // The later joiner finds the earlier one through the bootstrap; its dial then makes it known the other way.
    const cSeesA = await c.handle.call('waitForBidirectionalDiscovery', { peerIds: [a.peerId], timeoutMs: 20_000 }, { signal })
    const aSeesC = await a.handle.call('waitForBidirectionalDiscovery', { peerIds: [c.peerId], timeoutMs: 20_000 }, { signal })
    expect(cSeesA.missing).toEqual([])
    expect(aSeesC.missing).toEqual([])
    expect((await a.handle.call('listDiscoveredPeerIds', {})).peerIds).toContain(c.peerId)
    expect((await c.handle.call('listDiscoveredPeerIds', {})).peerIds).toContain(a.peerId)

    await boot.kill()
    expect(isProcessAlive(pids[0] ?? -1)).toBe(false)
    for (const peer of [a, c]) {
      const result = await peer.handle.call('connectWithTimeout', { timeoutMs: 5_000 }, { signal })
      expect(result.success).toBe(false)
      expect(result.error?.category, JSON.stringify(result.error)).toBe('refused')
    }

    await b[Symbol.asyncDispose]()
    expect(childNodePids()).toEqual([])
    for (const pid of pids) expect(isProcessAlive(pid)).toBe(false)
  })

  it('reports a node that cannot start with its stderr, and leaves no process', async () => {
    const b = backend()
    const bootConfig = config('boot', 'bootstrap')
    const { listen } = await b.place(bootConfig, AbortSignal.timeout(10_000))
    const first = await b.startNode({ ...bootConfig, listen }, AbortSignal.timeout(30_000))
    // Same port twice: the second node cannot bind, and the error must say why.
    const error = await b.startNode({ ...config('boot-2', 'bootstrap'), listen }, AbortSignal.timeout(30_000)).then(() => null, (err: Error) => err)
    expect(error?.message).toMatch(/boot-2.*exited before it was ready \(code 1\)/s)
    expect(error?.message).toMatch(/EADDRINUSE/)
    await first.stop()
    expect(childNodePids()).toEqual([])
  })

  it('stops gracefully through the shutdown command, and SIGKILLs a node that ignores it', async () => {
    const b = backend()
    const node = await b.startNode(config('peer-x', 'peer'), AbortSignal.timeout(30_000)) as ProcessNode
    const events: string[] = []
    const unsubscribe = node.handle.subscribe(ev => { events.push(ev.type) })
    await node.stop()
    unsubscribe()
    expect(node.child.exitStatus).toBe('code 0')
    expect(events).toContain('node:stopped')

    const fast = new ProcessBackend({ stopTimeoutMs: 1_000 })
    cleanups.push(async () => { await fast[Symbol.asyncDispose]() })
    const frozen = await fast.startNode(config('peer-y', 'peer'), AbortSignal.timeout(30_000)) as ProcessNode
    frozen.child.sendSignal('SIGSTOP')
    // A stopped process answers nothing: stop() must fall through shutdown and SIGTERM to SIGKILL within its budget.
    const started = Date.now()
    await frozen.stop()
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(frozen.child.exitStatus).toBe('signal SIGKILL')
  })

  it('supervises a bootstrap: kill -9 is detected, the node restarted at the same address, and it answers ping again', async () => {
    const b = backend()
    const signal = AbortSignal.timeout(55_000)
    // timeScale 0.01: a check every 0.6 s; the ping deadline is real time (never scaled), 2 s instead of the
    // plan's 5 s to keep the test short.
    const bootConfig = config('boot', 'bootstrap', { timing: { ...config('x', 'peer').timing, timeScale: 0.01 } })
    const { listen } = await b.place(bootConfig, signal)
    const boot = await b.startNode({ ...bootConfig, listen }, signal)
    const restarted: StartedNode[] = []
    const events: SupervisorEvent[] = []
    const supervised = await b.supervise(boot, {
      supervisor: { pingTimeoutMs: 2_000 },
      onRestarted: n => { restarted.push(n) },
      onEvent: e => { events.push(e) }
    })
    await until(() => events.some(e => e.type === 'check' && e.ok), signal)

    const killedAt = Date.now()
    await boot.kill()
    await until(() => events.some(e => e.type === 'recovered'), signal)
    expect(restarted).toHaveLength(1)
    expect(supervised.current).toBe(restarted[0])
    expect(supervised.current.peerId).toBe(boot.peerId)
    expect(supervised.current.multiaddrs).toEqual(boot.multiaddrs)
    const [recovery] = supervised.supervisor.recoveries()
    expect(recovery?.automatic).toBe(true)
    expect(recovery?.failedAtExact).toBe(true)
    expect(recovery!.failedAt).toBeGreaterThanOrEqual(killedAt)
    expect(recovery!.detectedAt).toBeGreaterThanOrEqual(recovery!.failedAt)
    expect(recovery!.recoveredAt).toBeGreaterThan(recovery!.detectedAt)

    await using pinger = await createPinger()
    const pong = await pinger.ping(boot.multiaddrs[0]!, AbortSignal.timeout(5_000))
    expect(pong.ok, pong.detail).toBe(true)
    expect((await supervised.current.handle.call('info', {})).peerId).toBe(boot.peerId)
    await supervised.stop()
  })
})

async function until (condition: () => boolean, signal: AbortSignal): Promise<void> {
  while (!condition()) {
    signal.throwIfAborted()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('ProcessBackend: control channel authentication (issue 12)', () => {
  it('refuses a command without the node\'s token; the token is in no command line and no file once the node runs', async () => {
    const b = backend()
    const signal = AbortSignal.timeout(30_000)
    const node = await b.startNode(config('auth', 'peer'), signal) as ProcessNode
    const url = node.child.ready.control
    // What any local user could do before: stop the node with one unauthenticated POST.
    const anonymous = await fetch(`${url}/commands/shutdown`, { method: 'POST' })
    expect(anonymous.status).toBe(401)
    expect((await fetch(`${url}/commands/shutdown`, { method: 'POST', headers: { authorization: `Bearer ${'0'.repeat(64)}` } })).status).toBe(401)
    expect(isProcessAlive(node.child.pid)).toBe(true)
    expect((await node.handle.call('info', {}, { signal })).name).toBe('auth')

    const token = node.child.ready.token
    expect(token).toMatch(/^[0-9a-f]{64}$/)
    const cmdline = readFileSync(`/proc/${node.child.pid}/cmdline`, 'utf8')
    expect(cmdline).not.toContain(token)
    expect(readFileSync(`/proc/${node.child.pid}/environ`, 'utf8')).not.toContain(token)
    const tokenFile = cmdline.split('\0')[cmdline.split('\0').indexOf('--control-token-file') + 1] ?? ''
    expect(tokenFile).not.toBe('')
    expect(existsSync(tokenFile)).toBe(false)
  })
})
