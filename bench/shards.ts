/**
 * The sharded scale bench: one bootstrap and N peers spread over K shard processes (sim/backends/shard/), driven
 * through each node's control channel exactly as a scenario drives them. K = 1 is "one worker" (every node on one
 * JavaScript thread, as in tcp mode, plus the control channels), K = the machine's cores is "all cores".
 *
 *   node bench/shards.ts --n 100 --shards 2 [--seed 42] [--deadline-s 120] [--newcomers 20]
 *
 * Prints one JSON object (ShardScaleResult) on stdout; progress on stderr. Figures:
 * - convergeMs: from the first dial until every peer is verified, where verified = connectWithTimeout succeeded &&
 *   routingTablePopulated && dhtReadWrite (testPeerDiscovery put+get), as in bench/scale.ts except that the
 *   bootstrap connection is not re-checked from an event stream (N streams would load the harness, not the nodes);
 * - newcomers: after convergence, newcomers join one at a time, each against a seeded random existing peer
 *   (bench/newcomers.ts: from the nodes' own peer:discovered events, with the reason for each miss);
 * - verifiedPerCoreMinute: verified peers ÷ CPU minutes used by the shards and the harness together;
 * - peakRssPerPeerMiB: the shards' peak RSS (VmHWM) summed, minus an idle shard's RSS each, ÷ (N + 1).
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { NodeConfigSchema, type NodeConfigInput } from '../nodes/config.ts'
import type { StartedNode } from '../sim/backends/backend.ts'
import { ShardBackend } from '../sim/backends/shard/shard.ts'
import { prng } from '../sim/seed.ts'
import { VerifyGate } from './verify-gate.ts'
import { measureNewcomers, type NewcomerResult } from './newcomers.ts'
import { round, waitUntil } from './util.ts'

export interface ShardScaleResult {
  n: number
  shards: number
  seed: number
  deadlineMs: number
  verifiedDefinition: string
  startMs: number
  /** From the first dial until every peer is verified; null when the deadline passed first. */
  convergeMs: number | null
  verified: number
  connectFailures: number
  /** Categories of the connects that failed twice. */
  connectErrors: Record<string, number>
  /** testPeerDiscovery calls that failed (each retried after 1 s) and the first few errors. */
  dhtReadWrite: { failures: number, errors: string[], /** The verify gate's ceiling is 4 per shard (bench/verify-gate.ts); how low it backed off. */ concurrencyLowest?: number }
  /** bench/newcomers.ts; absent when none were asked for or the population did not converge. */
  newcomers?: NewcomerResult
  cpu: { harnessMs: number, shardsMs: number, totalMs: number }
  verifiedPerCoreMinute: number
  memory: { shardPeakRssMiB: number[], idleShardRssMiB: number, peakRssPerPeerMiB: number }
  machine: { cpus: number, loadAverageAtStart: number, loadAverageAtEnd: number }
  error?: string
}

export const SHARD_VERIFIED_DEFINITION = 'connectWithTimeout succeeded && routingTablePopulated && dhtReadWrite (testPeerDiscovery put+get)'

const CLOCK_TICKS = 100

/** utime + stime of a process, in ms (Linux /proc; 0 elsewhere). */
function processCpuMs (pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
  } catch { return 0 }
}

/** A field of /proc/PID/status in MiB (VmHWM: peak RSS, VmRSS: now). */
function statusMiB (pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith(`${field}:`))
    return round(Number(line?.split(/\s+/)[1] ?? 0) / 1024, 1)
  } catch { return 0 }
}

export async function measureShardScale (opts: { n: number, shards: number, seed: number, deadlineMs: number, newcomers: number, stackTraces?: boolean, log: (m: string) => void }): Promise<ShardScaleResult> {
  const { n, shards, seed, deadlineMs, log } = opts
  const rand = prng(`shards/${seed}/${n}`)
  const tag = `s${seed}-n${n}`
  const loadAtStart = round(os.loadavg()[0] ?? 0, 2)
  const harnessCpu0 = process.cpuUsage()
  // Stack-less errors in the shards, as in the one-process bench (bench/scale-child.ts): no code under test reads one.
  const backend = new ShardBackend({ shards, stackTraceLimit: opts.stackTraces === true ? undefined : 0 })
  const signal = AbortSignal.timeout(deadlineMs + 600_000)
  const result: Partial<ShardScaleResult> = {}
  let error: string | undefined
  const peers: Array<{ node: StartedNode, verified: boolean }> = []
  let shardCpuMs = 0
  let shardPeaks: number[] = []
  let idleShardRss = 0
  try {
    const config = (input: NodeConfigInput): NodeConfigInput & { listen?: string[] } => input
    const bootConfig = NodeConfigSchema.parse(config({ name: `boot-${tag}`, role: 'bootstrap', transport: 'tcp', identitySeed: `boot/${tag}`, maxPeers: Math.max(1_000, n + 50) }))
    const { listen } = await backend.place(bootConfig, signal)
    const t0 = performance.now()
    const boot = await backend.startNode({ ...bootConfig, listen }, signal)
    // An idle shard's footprint (node-less runtime + libp2p loaded + one node): subtracted per shard below.
    idleShardRss = statusMiB(backend.pids[0]!, 'VmRSS')
    const bootAddrs = [`${listen[0]}/p2p/${boot.peerId}`]
    const peerConfig = (i: number): ReturnType<typeof NodeConfigSchema.parse> => NodeConfigSchema.parse({
      name: `p${i}-${tag}`, role: 'peer', transport: 'tcp', identitySeed: `peer/${tag}/${i}`, bootstrapAddrs: bootAddrs, autoMonitor: false
    })
    for (let b = 0; b < n; b += 50) {
      const started = await Promise.all(Array.from({ length: Math.min(50, n - b) }, async (_v, k) => await backend.startNode(peerConfig(b + k), signal)))
      for (const node of started) peers.push({ node, verified: false })
    }
    result.startMs = Math.round(performance.now() - t0)
    log(`N=${n} K=${shards}: ${n} peers started in ${result.startMs} ms`)

    const tJoin = performance.now()
    const overall = AbortSignal.timeout(deadlineMs)
    let connectFailures = 0
    let dhtFailures = 0
    const dhtErrors: string[] = []
    let lastVerifiedAt = 0
    const gate = new VerifyGate(4 * shards)
    const deadlineOfPut = peerConfig(0).timing.dhtQueryTimeoutMs
    const verify = async (p: typeof peers[number]): Promise<void> => {
      const populated = await waitUntil(async () => (await p.node.handle.call('getDhtRoutingTableSize', {}, { signal: overall }).catch(() => ({ size: 0 }))).size > 0, Math.max(0, deadlineMs - (performance.now() - tJoin)), 100, overall)
      while (populated && !overall.aborted) {
        type Attempt = { success: boolean, latencyMs?: number, error?: string }
        const r = await gate.run<Attempt>(
          async () => await p.node.handle.call('testPeerDiscovery', { testContent: 'shard-verify' }, { signal: overall }).catch((err: unknown) => ({ success: false, error: String(err) })),
          r => ({ timedOut: !r.success && (r.latencyMs ?? 0) >= deadlineOfPut, ms: r.latencyMs ?? 0, deadlineMs: deadlineOfPut }))
        // Past the run's deadline an attempt fails at once: that is the bench stopping, not a failed put.
        if (!r.success && overall.aborted) break
        if (r.success) { p.verified = true; lastVerifiedAt = performance.now() - tJoin; break }
        dhtFailures++
        if (dhtErrors.length < 5) dhtErrors.push(r.error ?? 'unknown')
        await new Promise(resolve => setTimeout(resolve, 1_000))
      }
    }
    const verifications: Array<Promise<void>> = []
    const connectErrors = new Map<string, number>()
    // Join: batches of dials to the one bootstrap, as bench/scale.ts does; a failed connect is tried once more after
    // the batches (a busy bootstrap under load), and what failed twice is counted with its category.
    const connect = async (p: typeof peers[number], last: boolean): Promise<boolean> => {
      const r: { success: boolean, error?: { category: string } | undefined } = await p.node.handle.call('connectWithTimeout', {}, { signal: overall }).catch(() => ({ success: false, error: { category: 'no answer' } }))
      if (r.success) verifications.push(verify(p))
      else if (last) connectErrors.set(r.error?.category ?? 'failed', (connectErrors.get(r.error?.category ?? 'failed') ?? 0) + 1)
      return r.success
    }
    const retry: Array<typeof peers[number]> = []
    for (let b = 0; b < n && !overall.aborted; b += 25) {
      const batch = peers.slice(b, b + 25)
      await Promise.all(batch.map(async p => { if (!await connect(p, false)) retry.push(p) }))
      if ((b / 25) % 4 === 0) log(`N=${n} K=${shards}: ${Math.min(n, b + 25)} dialled at ${Math.round(performance.now() - tJoin)} ms, ${peers.filter(p => p.verified).length} verified`)
    }
    for (const p of retry) if (!overall.aborted && !await connect(p, true)) connectFailures++
    result.connectErrors = Object.fromEntries(connectErrors)
    await Promise.all(verifications)
    const verified = peers.filter(p => p.verified).length
    result.verified = verified
    result.connectFailures = connectFailures
    result.dhtReadWrite = { failures: dhtFailures, errors: dhtErrors, concurrencyLowest: gate.lowest }
    result.convergeMs = verified === n ? Math.round(lastVerifiedAt) : null
    log(`N=${n} K=${shards}: ${verified}/${n} verified, converge ${result.convergeMs ?? 'not reached'} ms`)

    // Newcomers: each joins the converged network against a seeded random existing peer (bench/newcomers.ts).
    if (verified === n && opts.newcomers > 0) {
      result.newcomers = await measureNewcomers({
        count: opts.newcomers,
        existing: peers.map(p => ({ peerId: p.node.peerId, handle: p.node.handle })),
        rand,
        start: async i => {
          const node = await backend.startNode(peerConfig(n + i), signal)
          return { peerId: node.peerId, handle: node.handle }
        },
        onProgress: m => { log(`N=${n} K=${shards}: ${m}`) }
      })
    }
  } catch (err) {
    error = String((err as Error)?.stack ?? err)
  } finally {
    // Read before the shards exit: their CPU and peak RSS go with them.
    shardCpuMs = backend.pids.reduce((sum, pid) => sum + processCpuMs(pid), 0)
    shardPeaks = backend.pids.map(pid => statusMiB(pid, 'VmHWM'))
    await backend[Symbol.asyncDispose]()
  }
  const harness = process.cpuUsage(harnessCpu0)
  const harnessMs = Math.round((harness.user + harness.system) / 1000)
  const totalMs = harnessMs + Math.round(shardCpuMs)
  const population = n + 1
  return {
    n,
    shards,
    seed,
    deadlineMs,
    verifiedDefinition: SHARD_VERIFIED_DEFINITION,
    startMs: result.startMs ?? 0,
    convergeMs: result.convergeMs ?? null,
    verified: result.verified ?? 0,
    connectFailures: result.connectFailures ?? 0,
    connectErrors: result.connectErrors ?? {},
    dhtReadWrite: result.dhtReadWrite ?? { failures: 0, errors: [] },
    ...(result.newcomers != null ? { newcomers: result.newcomers } : {}),
    cpu: { harnessMs, shardsMs: Math.round(shardCpuMs), totalMs },
    verifiedPerCoreMinute: round((result.verified ?? 0) / Math.max(1e-9, totalMs / 60_000), 1),
    memory: {
      shardPeakRssMiB: shardPeaks,
      idleShardRssMiB: idleShardRss,
      peakRssPerPeerMiB: round(shardPeaks.reduce((s, p) => s + Math.max(0, p - idleShardRss), 0) / population, 2)
    },
    machine: { cpus: os.availableParallelism(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: round(os.loadavg()[0] ?? 0, 2) },
    ...(error != null ? { error } : {})
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { n: { type: 'string' }, shards: { type: 'string' }, seed: { type: 'string' }, 'deadline-s': { type: 'string' }, newcomers: { type: 'string' }, 'stack-traces': { type: 'boolean', default: false } } })
  const n = Number(values.n ?? 100)
  const shards = Number(values.shards ?? os.availableParallelism())
  if (!Number.isInteger(n) || n < 2 || !Number.isInteger(shards) || shards < 1) {
    process.stderr.write('usage: node bench/shards.ts --n N (≥ 2) --shards K (≥ 1) [--seed S] [--deadline-s 120] [--newcomers 20]\n')
    process.exit(2)
  }
  const result = await measureShardScale({
    n,
    shards,
    seed: Number(values.seed ?? 42),
    deadlineMs: Number(values['deadline-s'] ?? 120) * 1000,
    newcomers: Number(values.newcomers ?? 0),
    stackTraces: values['stack-traces'],
    log: m => { process.stderr.write(`[shards] ${m}\n`) }
  })
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(result.error != null ? 1 : 0)
}
