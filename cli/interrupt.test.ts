import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { findToxiproxyBinary } from '../sim/faults/toxiproxy-server.ts'
import { RunRecordSchema } from '../scenarios/record.ts'
import { isProcessAlive, waitUntil as until } from '../nodes/supervisor/test-support.ts'

/**
 * Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group (the harness, its node processes and
 * whatever else it spawned), not to the harness's pid alone. Issue 12: the harness's own toxiproxy-server died first,
 * proxy deletion failed with ECONNREFUSED, and that became "internal error", exit 1, no report.
 */

const ROOT = path.resolve(import.meta.dirname, '..')
const CLI = path.join(ROOT, 'cli/main.ts')
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

/** Every live process in a process group (ps, not bookkeeping: the point is to catch leftovers; zombies are dead). */
function groupMembers (pgid: number): string[] {
  let out = ''
  try {
    out = execFileSync('ps', ['-eo', 'pgid=,pid=,stat=,args='], { encoding: 'utf8' })
  } catch { return [] }
  return out.split('\n').map(l => l.trim().split(/\s+/)).filter(f => Number(f[0]) === pgid && !(f[2] ?? '').startsWith('Z')).map(f => f.join(' '))
}

function childrenOf (pid: number): string[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter(l => l.trim() !== '')
  } catch { return [] }
}

const SCENARIO = `
name: interrupted-fault-run
title: a fault run that waits until Ctrl-C
nodes: [{ role: bootstrap, name: boot }, { role: peer, name: A }]
steps:
  - { action: start, nodes: [boot, A] }
  - { action: connect, nodes: [A], expect: { success: true } }
  - { action: fault, target: { to: [boot] }, toxic: { type: latency, latency: 100 }, as: slow }
  - { action: pause, ms: 600000, label: waiting for Ctrl-C }
`

describe.skipIf(findToxiproxyBinary() == null)('Ctrl-C during a fault run', () => {
  it.each([['tcp', 1], ['shards', 1], ['process', 1], ['tcp', 2]] as const)('%s mode, %i scenario(s) over as many worker threads: a process-group SIGINT writes the report, marks the run interrupted, exits 130 and leaves nothing', async (mode, count) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'chiral-interrupt-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const names = Array.from({ length: count }, (_, i) => count === 1 ? 'interrupted-fault-run' : `interrupted-fault-run-${i + 1}`)
    const files = names.map(name => path.join(dir, `${name}.yaml`))
    for (const [i, file] of files.entries()) await writeFile(file, SCENARIO.replace('interrupted-fault-run', names[i]!))
    const reportDir = path.join(dir, 'reports')
    // detached: its own process group, whose id is its pid, as a shell makes a foreground job.
    const child = spawn(process.execPath, [CLI, 'run', ...files, '--mode', mode, '--workers', String(count), '--report-dir', reportDir, '--seed', '7'], {
      cwd: ROOT, env: { ...process.env, CI: 'true' }, detached: true, stdio: ['ignore', 'pipe', 'pipe']
    })
    const pgid = child.pid!
    cleanups.push(() => { try { process.kill(-pgid, 'SIGKILL') } catch { /* gone */ } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exit = new Promise<number | null>(resolve => child.on('close', resolve))

    // In the pause: each scenario's fault proxy exists and its toxiproxy-server runs as the harness's child (started
    // from the scenario's worker thread when there are several).
    expect(await until(() => childrenOf(pgid).filter(l => l.includes('toxiproxy-server')).length === count, 60_000, 200), stderr).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 3_000))
    // Shards run in process groups of their own (as the toxiproxy-server does): followed by pid, not by group.
    const children = childrenOf(pgid).map(l => Number(l.trim().split(/\s+/)[0]))
    process.kill(-pgid, 'SIGINT')
    const deadline = setTimeout(() => { try { process.kill(-pgid, 'SIGKILL') } catch { /* gone */ } }, 60_000)
    const code = await exit
    clearTimeout(deadline)

    expect(stderr).not.toMatch(/internal error/)
    expect(code, `${stdout}\n${stderr}`).toBe(130)
    expect(await until(() => children.every(p => !isProcessAlive(p)), 10_000, 100)).toBe(true)
    const reportFile = path.join(reportDir, 'report.json')
    expect(existsSync(reportFile)).toBe(true)
    const record = RunRecordSchema.parse(JSON.parse(await readFile(reportFile, 'utf8')))
    expect(record.run.interrupted).toBe(true)
    expect(record.run.workers).toBe(count > 1 ? count : undefined)
    expect(record.scenarios.map(s => [s.name, s.status, s.reason])).toEqual(names.map(name => [name, 'error', 'interrupted']))
    expect(await until(() => groupMembers(pgid).length === 0, 10_000, 200), groupMembers(pgid).join('\n')).toBe(true)
    expect(childrenOf(pgid)).toEqual([])
  }, 120_000)

  it.each([1, 2])('SIGKILL of the harness (process mode, during a fault run, %i worker thread(s)) leaves no node and no toxiproxy-server behind', async workers => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'chiral-sigkill-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const files = Array.from({ length: workers }, (_, i) => path.join(dir, `killed-${i}.yaml`))
    for (const [i, file] of files.entries()) await writeFile(file, SCENARIO.replace('interrupted-fault-run', `killed-fault-run-${i}`))
    const child = spawn(process.execPath, [CLI, 'run', ...files, '--mode', 'process', '--workers', String(workers), '--report-dir', path.join(dir, 'reports'), '--seed', '8'], {
      cwd: ROOT, env: { ...process.env, CI: 'true' }, detached: true, stdio: ['ignore', 'pipe', 'pipe']
    })
    const pid = child.pid!
    cleanups.push(() => { try { process.kill(-pid, 'SIGKILL') } catch { /* gone */ } })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exit = new Promise(resolve => child.on('close', resolve))
    // Each scenario's two nodes and server, all children of the harness (started from its worker thread, if any).
    expect(await until(() => childrenOf(pid).length >= 3 * workers && childrenOf(pid).filter(l => l.includes('toxiproxy-server')).length === workers, 60_000, 200), stderr).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 2_000))
    const children = childrenOf(pid).map(l => Number(l.trim().split(/\s+/)[0]))
    cleanups.push(() => { for (const p of children) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } } })
    // The harness alone, as the kernel's OOM killer or `kill -9 PID` would: no handler, no 'exit' hook runs.
    process.kill(pid, 'SIGKILL')
    await exit
    expect(await until(() => children.every(p => !isProcessAlive(p)), 10_000, 100), childrenOf(1).filter(l => children.some(c => l.trim().startsWith(String(c)))).join('\n')).toBe(true)
  }, 120_000)
})
