import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeConfigSchema, type NodeConfig } from '../../../nodes/config.ts'
import { isProcessAlive, waitUntil } from '../../../nodes/supervisor/test-support.ts'
import { ShardBackend } from './shard.ts'

const ROOT = path.resolve(import.meta.dirname, '../../..')
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

const run = `sh-${process.pid}-${Date.now().toString(36)}`
function config (name: string, role: 'bootstrap' | 'peer', extra: Partial<NodeConfig> = {}): NodeConfig {
  return NodeConfigSchema.parse({ name, role, transport: 'tcp', identitySeed: `${run}/${name}`, ...extra })
}

describe('ShardBackend', () => {
  it('spreads nodes over its shards, which find each other over TCP across shards, behind authenticated control channels; disposing ends every shard', async () => {
    // Stack-less errors (as the scale bench runs shards) change nothing a node does: the verdicts below still hold.
    const b = new ShardBackend({ shards: 2, stackTraceLimit: 0 })
    cleanups.push(async () => { await b[Symbol.asyncDispose]() })
    const signal = AbortSignal.timeout(60_000)
    const bootConfig = config('boot', 'bootstrap')
    const { listen } = await b.place(bootConfig, signal)
    const boot = await b.startNode({ ...bootConfig, listen }, signal)
    const bootAddr = `${listen[0]}/p2p/${boot.peerId}`
    const a = await b.startNode(config('a', 'peer', { bootstrapAddrs: [bootAddr] }), signal)
    const c = await b.startNode(config('c', 'peer', { bootstrapAddrs: [bootAddr] }), signal)
    // boot and c on shard 0, a on shard 1: discovery below crosses processes.
    expect(b.pids).toHaveLength(2)
    for (const pid of b.pids) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--stack-trace-limit=0')
    for (const peer of [a, c]) expect((await peer.handle.call('connectWithTimeout', {}, { signal })).success).toBe(true)
    const cSeesA = await c.handle.call('waitForBidirectionalDiscovery', { peerIds: [a.peerId], timeoutMs: 20_000 }, { signal })
    expect(cSeesA.missing).toEqual([])
    expect((await a.handle.call('verifyPeerDiscovery', {}, { signal })).overall).toBe('verified')

    // Each node's control channel answers only to its token, as a process-mode node's does.
    const url = (a.handle as unknown as { url: string }).url
    expect((await fetch(`${url}/healthz`)).status).toBe(401)

    // A stopped node is gone from its shard; started again under its name, it comes back (to the same shard).
    await a.stop()
    const again = await b.startNode(config('a', 'peer', { bootstrapAddrs: [bootAddr] }), signal)
    expect(again.peerId).toBe(a.peerId)
    expect(b.pids).toHaveLength(2)

    const pids = b.pids
    await b[Symbol.asyncDispose]()
    expect(pids.every(p => !isProcessAlive(p))).toBe(true)
  }, 90_000)

  it('a harness killed outright (SIGKILL) leaves no shard behind', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'chiral-shard-kill-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const file = path.join(dir, 'slow.yaml')
    await writeFile(file, `
name: shards-until-killed
title: waits until the harness is killed
nodes: [{ role: bootstrap, name: boot }, { role: peer, name: p, count: 3, bootstraps: [boot] }]
steps:
  - { action: start, nodes: [boot, p] }
  - { action: connect, nodes: [p], expect: { success: true } }
  - { action: pause, ms: 600000, label: waiting to be killed }
`)
    const child = spawn(process.execPath, [path.join(ROOT, 'cli/main.ts'), 'run', file, '--mode', 'shards', '--report-dir', path.join(dir, 'r')], {
      cwd: ROOT, env: { ...process.env, CI: 'true' }, detached: true, stdio: ['ignore', 'pipe', 'pipe']
    })
    const pid = child.pid!
    cleanups.push(() => { try { process.kill(-pid, 'SIGKILL') } catch { /* gone */ } })
    const exit = new Promise(resolve => child.on('close', resolve))
    // The shards run in process groups of their own, so the harness's children are what to look for.
    const shards = (): number[] => {
      try {
        return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n')
          .filter(l => l.includes('shard/host.ts')).map(l => Number(l.trim().split(/\s+/)[0]))
      } catch { return [] }
    }
    expect(await waitUntil(() => shards().length >= 1, 60_000, 200)).toBe(true)
    // Past the start: the nodes run in the shards.
    await new Promise(resolve => setTimeout(resolve, 3_000))
    const started = shards()
    cleanups.push(() => { for (const p of started) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } } })
    process.kill(pid, 'SIGKILL')
    await exit
    expect(await waitUntil(() => started.every(p => !isProcessAlive(p)), 15_000, 100)).toBe(true)
  }, 120_000)
})
