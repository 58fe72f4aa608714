/**
 * The sharded scale bench: one bootstrap and N peers spread over K shard processes (sim/backends/shard/), driven
 * through each node's control channel exactly as a scenario drives them. K = 1 is "one worker" (every node on one
 * JavaScript thread, as in tcp mode, plus the control channels), K = the machine's cores is "all cores".
 *
 *   node bench/shards.ts --n 100 --shards 2 [--seed 42] [--deadline-s 120] [--newcomers 20] [--profile alpha3-1path]
 *
 * Prints one JSON object (ShardScaleResult) on stdout; progress on stderr. The population, its verification and its
 * newcomers are bench/population.ts's (shared with the swarm bench); this file adds what the shards cost:
 * - verifiedPerCoreMinute: verified peers ÷ CPU minutes used by the shards and the harness together, until the last
 *   verification ended (the newcomers come after);
 * - peakRssPerPeerMiB: the shards' peak RSS (VmHWM) summed at that moment, minus an idle shard's RSS each, ÷ (N + 1).
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { ShardBackend } from '../sim/backends/shard/shard.ts'
import { prng } from '../sim/seed.ts'
import { POPULATION_VERIFIED_DEFINITION, runPopulation, type PopulationResult } from './population.ts'
import { round } from './util.ts'
import { parseProfile, SCALE_PROFILES, type ScaleProfile } from './profiles.ts'

export interface ShardScaleResult extends Partial<PopulationResult> {
  n: number
  shards: number
  seed: number
  profile: ScaleProfile
  deadlineMs: number
  verifiedDefinition: string
  startMs: number
  convergeMs: number | null
  verified: number
  connectFailures: number
  connectErrors: Record<string, number>
  dhtReadWrite: PopulationResult['dhtReadWrite']
  cpu: { harnessMs: number, shardsMs: number, totalMs: number }
  verifiedPerCoreMinute: number
  memory: { shardPeakRssMiB: number[], idleShardRssMiB: number, peakRssPerPeerMiB: number }
  machine: { cpus: number, loadAverageAtStart: number, loadAverageAtEnd: number }
  error?: string
}

export const SHARD_VERIFIED_DEFINITION = POPULATION_VERIFIED_DEFINITION

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

export async function measureShardScale (opts: { n: number, shards: number, seed: number, deadlineMs: number, newcomers: number, profile?: ScaleProfile, stackTraces?: boolean, log: (m: string) => void }): Promise<ShardScaleResult> {
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
  let shardCpuMs = 0
  let shardPeaks: number[] = []
  let idleShardRss = 0
  let atVerified: { shardCpuMs: number, harness: NodeJS.CpuUsage, shardPeaks: number[] } | undefined
  const shardCpu = (): number => backend.pids.reduce((sum, pid) => sum + processCpuMs(pid), 0)
  const shardPeaksNow = (): number[] => backend.pids.map(pid => statusMiB(pid, 'VmHWM'))
  try {
    Object.assign(result, await runPopulation({
      backend,
      n,
      tag,
      deadlineMs,
      newcomers: opts.newcomers,
      verifyCeiling: 4 * shards,
      dht: SCALE_PROFILES[opts.profile ?? 'kad-dht-defaults'],
      rand,
      signal,
      log: m => { log(`K=${shards}: ${m}`) },
      // An idle shard's footprint (node-less runtime + libp2p loaded + one node): subtracted per shard below.
      afterBootstrap: () => { idleShardRss = statusMiB(backend.pids[0]!, 'VmRSS') },
      // The population's cost ends with its verifications: the newcomers' quarter of an hour is not counted.
      afterVerified: () => { atVerified = { shardCpuMs: shardCpu(), harness: process.cpuUsage(harnessCpu0), shardPeaks: shardPeaksNow() } }
    }))
  } catch (err) {
    error = String((err as Error)?.stack ?? err)
  } finally {
    // Read before the shards exit: their CPU and peak RSS go with them.
    shardCpuMs = atVerified?.shardCpuMs ?? shardCpu()
    shardPeaks = atVerified?.shardPeaks ?? shardPeaksNow()
    await backend[Symbol.asyncDispose]()
  }
  const harness = atVerified?.harness ?? process.cpuUsage(harnessCpu0)
  const harnessMs = Math.round((harness.user + harness.system) / 1000)
  const totalMs = harnessMs + Math.round(shardCpuMs)
  const population = n + 1
  return {
    n,
    shards,
    seed,
    profile: opts.profile ?? 'kad-dht-defaults',
    deadlineMs,
    verifiedDefinition: SHARD_VERIFIED_DEFINITION,
    startMs: result.startMs ?? 0,
    convergeMs: result.convergeMs ?? null,
    verified: result.verified ?? 0,
    connectFailures: result.connectFailures ?? 0,
    connectErrors: result.connectErrors ?? {},
    dhtReadWrite: result.dhtReadWrite ?? { failures: 0, errors: [] },
    ...(result.newcomers != null ? { newcomers: result.newcomers } : {}),
    ...(result.newcomerLookups != null ? { newcomerLookups: result.newcomerLookups } : {}),
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
  const { values } = parseArgs({ options: { n: { type: 'string' }, shards: { type: 'string' }, seed: { type: 'string' }, 'deadline-s': { type: 'string' }, newcomers: { type: 'string' }, profile: { type: 'string' }, 'stack-traces': { type: 'boolean', default: false } } })
  const n = Number(values.n ?? 100)
  const shards = Number(values.shards ?? os.availableParallelism())
  if (!Number.isInteger(n) || n < 2 || !Number.isInteger(shards) || shards < 1) {
    process.stderr.write('usage: node bench/shards.ts --n N (≥ 2) --shards K (≥ 1) [--seed S] [--deadline-s 120] [--newcomers 20] [--profile kad-dht-defaults|alpha3-1path]\n')
    process.exit(2)
  }
  const result = await measureShardScale({
    n,
    shards,
    seed: Number(values.seed ?? 42),
    deadlineMs: Number(values['deadline-s'] ?? 120) * 1000,
    newcomers: Number(values.newcomers ?? 0),
    profile: parseProfile(values.profile),
    stackTraces: values['stack-traces'],
    log: m => { process.stderr.write(`[shards] ${m}\n`) }
  })
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(result.error != null ? 1 : 0)
}
