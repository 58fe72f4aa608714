/**
 * The swarm scale-out bench: the same population of `--n` peers (and a bootstrap, on the manager) on one engine of a
 * Docker Swarm, then spread over two, and each engine's throughput (peers verified per minute, per engine) compared
 * with the single engine's: ideal scale-out keeps it, so the ratio says what spreading over engines costs.
 * `--weak` instead gives every engine `--n` peers (the population grows with the engines): that also measures how a
 * larger DHT costs more per peer (js kad-dht's put walks 20 disjoint paths, reaching most of a small network).
 *
 *   bash scripts/setup-swarm.sh up && node bench/swarm.ts [--n 30] [--engines 2] [--weak] [--seed 42] [--deadline-s 600] [--newcomers 20] [--profile alpha3-1path]
 *
 * One machine stands in for several: each engine gets its own core (`--pin`, default on: the cpuset of the cgroup
 * its containers run under, /docker for this machine's engine and /chiral-swarm-worker for the one
 * scripts/setup-swarm.sh starts), so "one engine" is one core's worth of machine and two engines are two, as two
 * one-core machines would be. Without pinning both runs share every core, and the comparison says how a second engine
 * on the same machine helps, not how a second machine does. The harness itself (this process, dockerd, containerd)
 * is not pinned. The cpusets are restored when the bench ends.
 *
 * Figures per run: the containers' start (vfs copies the image per container: disk, not CPU), from the first dial
 * until every peer is verified (bench/population.ts), peers verified per minute of that and per engine, each engine's
 * CPU (its cgroup's cpuacct), where each node ran. `--newcomers K`: once the many-engine run's population is all
 * verified, K newcomers join it, passive and then looking each other up (bench/newcomers.ts), placed over its engines
 * like the population (the one-engine run has none: it is only the throughput's reference). Prints one JSON object
 * on stdout; progress on stderr.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { ensureNodeImage } from '../sim/backends/docker-image.ts'
import { SwarmBackend } from '../sim/backends/swarm/swarm.ts'
import { prng } from '../sim/seed.ts'
import { POPULATION_VERIFIED_DEFINITION, runPopulation, type PopulationResult } from './population.ts'
import { round } from './util.ts'
import { parseProfile, SCALE_PROFILES, type ScaleProfile } from './profiles.ts'

/** The cgroup each engine's containers run under, in the order engines are used (the manager first). */
export const ENGINE_CGROUPS = ['/docker', '/chiral-swarm-worker'] as const

const V1_CPUSET = '/sys/fs/cgroup/cpuset'
const V1_CPUACCT = '/sys/fs/cgroup/cpuacct'

/** cgroup v1 (this machine) or v2: where cpuset.cpus and the CPU counter of a cgroup are. */
function cgroupFiles (group: string): { cpus: string, mems: string, rootCpus: string, rootMems: string, usage: () => number } {
  if (existsSync(V1_CPUSET)) {
    return {
      cpus: `${V1_CPUSET}${group}/cpuset.cpus`,
      mems: `${V1_CPUSET}${group}/cpuset.mems`,
      rootCpus: `${V1_CPUSET}/cpuset.cpus`,
      rootMems: `${V1_CPUSET}/cpuset.mems`,
      usage: () => { try { return Number(readFileSync(`${V1_CPUACCT}${group}/cpuacct.usage`, 'utf8')) / 1e6 } catch { return 0 } }
    }
  }
  const dir = `/sys/fs/cgroup${group}`
  return {
    cpus: `${dir}/cpuset.cpus`,
    mems: `${dir}/cpuset.mems`,
    rootCpus: '/sys/fs/cgroup/cpuset.cpus.effective',
    rootMems: '/sys/fs/cgroup/cpuset.mems.effective',
    usage: () => { try { return Number(/usage_usec (\d+)/.exec(readFileSync(`${dir}/cpu.stat`, 'utf8'))?.[1] ?? 0) / 1e3 } catch { return 0 } }
  }
}

/**
 * What the pinned cgroups' cpusets were, written before they change: a bench killed while pinned would leave every
 * later container of this machine's engine on one core, so the next bench (or `unpinEngines()`) puts them back.
 */
const PIN_STATE = `/tmp/chiral-sim-swarm-bench-cpusets-${process.getuid?.() ?? 'user'}.json`

/** Puts back the cpusets a pinning bench changed, if one did and did not undo it (killed). */
export function unpinEngines (): void {
  if (!existsSync(PIN_STATE)) return
  const saved = JSON.parse(readFileSync(PIN_STATE, 'utf8')) as Array<{ file: string, cpus: string }>
  for (const { file, cpus } of saved.reverse()) { try { writeFileSync(file, cpus) } catch {} }
  rmSync(PIN_STATE, { force: true })
}

/** Pins each engine's cgroup to one core (engine i → core i); undone by unpinEngines(). Throws, saying why, when it cannot. */
export function pinEngines (engines: number): void {
  if (os.availableParallelism() < engines) throw new Error(`--pin gives each engine its own core, and this machine has ${os.availableParallelism()} for ${engines} engines: use --no-pin`)
  unpinEngines()
  const saved: Array<{ file: string, cpus: string }> = []
  for (let i = 0; i < engines; i++) {
    const f = cgroupFiles(ENGINE_CGROUPS[i]!)
    const dir = f.cpus.slice(0, f.cpus.lastIndexOf('/'))
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true })
    if (readFileSync(f.mems, 'utf8').trim() === '') writeFileSync(f.mems, readFileSync(f.rootMems, 'utf8'))
    saved.push({ file: f.cpus, cpus: readFileSync(f.cpus, 'utf8').trim() || readFileSync(f.rootCpus, 'utf8').trim() })
    writeFileSync(PIN_STATE, JSON.stringify(saved))
    writeFileSync(f.cpus, String(i))
  }
}

export interface SwarmRun extends PopulationResult {
  engines: number
  n: number
  pinned: boolean
  /** Peers verified per minute, from the first dial until all were verified (null: the deadline passed first). */
  verifiedPerMinute: number | null
  verifiedPerMinutePerEngine: number | null
  /** CPU of each engine's containers during the run (its cgroup's counter), in s. */
  engineCpuS: number[]
  /** Nodes per engine address, as the manager placed them. */
  placement: Record<string, number>
  loadAverage: { start: number, end: number }
  error?: string
}

export async function measureSwarmRun (opts: { engines: number, n: number, seed: number, deadlineMs: number, pin: boolean, newcomers?: number, profile?: ScaleProfile, log: (m: string) => void }): Promise<SwarmRun> {
  const n = opts.n
  const tag = `sw${opts.seed}-e${opts.engines}-n${n}`
  const counters = ENGINE_CGROUPS.slice(0, opts.engines).map(g => cgroupFiles(g).usage)
  const cpu0 = counters.map(c => c())
  const loadStart = round(os.loadavg()[0] ?? 0, 2)
  let backend: SwarmBackend | undefined
  let population: PopulationResult | undefined
  let error: string | undefined
  let placement: Record<string, number> = {}
  try {
    if (opts.pin) pinEngines(opts.engines)
    // vfs copies the image for every container: a task waits its turn on its engine's disk, not on the nodes' CPU.
    backend = await SwarmBackend.create({ maxEngines: opts.engines, startTimeoutMs: 600_000 })
    if (backend.engines.length < opts.engines) throw new Error(`the swarm has ${backend.engines.length} ready engines, and the run wants ${opts.engines}: bash scripts/setup-swarm.sh up`)
    const signal = AbortSignal.timeout(opts.deadlineMs + 900_000)
    population = await runPopulation({
      backend, n, tag, deadlineMs: opts.deadlineMs, newcomers: opts.newcomers ?? 0, verifyCeiling: 4 * opts.engines, startBatch: 4 * opts.engines,
      dht: SCALE_PROFILES[opts.profile ?? 'kad-dht-defaults'],
      rand: prng(`swarm/${opts.seed}/${n}`), signal, log: m => { opts.log(`engines=${opts.engines}: ${m}`) }
    })
    for (const p of backend.placed) placement[p.engine.addr] = (placement[p.engine.addr] ?? 0) + 1
  } catch (err) {
    error = String((err as Error)?.stack ?? err)
  } finally {
    await backend?.[Symbol.asyncDispose]().catch(() => {})
    unpinEngines()
  }
  const engineCpuS = counters.map((c, i) => round((c() - cpu0[i]!) / 1000, 1))
  const perMinute = population?.convergeMs != null ? round(population.verified / (population.convergeMs / 60_000), 1) : null
  return {
    ...(population ?? { startMs: 0, convergeMs: null, verified: 0, connectFailures: 0, connectErrors: {}, dhtReadWrite: { failures: 0, errors: [] } }),
    engines: opts.engines,
    n,
    pinned: opts.pin,
    verifiedPerMinute: perMinute,
    verifiedPerMinutePerEngine: perMinute != null ? round(perMinute / opts.engines, 1) : null,
    engineCpuS,
    placement,
    loadAverage: { start: loadStart, end: round(os.loadavg()[0] ?? 0, 2) },
    ...(error != null ? { error } : {})
  }
}

export interface SwarmScaleResult {
  seed: number
  profile: ScaleProfile
  /** Peers in every run (strong scaling), or per engine (`weak`). */
  n: number
  weak: boolean
  verifiedDefinition: string
  runs: SwarmRun[]
  /** The last run's verified per minute per engine ÷ the one-engine run's (target ≥ 0.8). */
  perEngineRatio: number | null
  machine: { cpus: number, engines: number }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { n: { type: 'string' }, engines: { type: 'string' }, weak: { type: 'boolean', default: false }, seed: { type: 'string' }, 'deadline-s': { type: 'string' }, 'no-pin': { type: 'boolean', default: false }, newcomers: { type: 'string' }, profile: { type: 'string' } } })
  const n = Number(values.n ?? 30)
  const profile = parseProfile(values.profile)
  const engines = Number(values.engines ?? 2)
  const newcomers = Number(values.newcomers ?? 0)
  if (!Number.isInteger(n) || n < 2 || !Number.isInteger(engines) || engines < 2 || !Number.isInteger(newcomers) || newcomers < 0) {
    process.stderr.write('usage: node bench/swarm.ts [--n N (≥ 2)] [--engines K (≥ 2)] [--weak] [--seed S] [--deadline-s 600] [--no-pin] [--newcomers K (≥ 0)] [--profile kad-dht-defaults|alpha3-1path]\n')
    process.exit(2)
  }
  const seed = Number(values.seed ?? 42)
  const log = (m: string): void => { process.stderr.write(`[swarm] ${m}\n`) }
  // Ctrl-C or a kill: the cpusets go back, and exiting runs the swarm backend's exit hook, which removes the run's
  // services, secrets and network.
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.once(signal, () => { unpinEngines(); process.exit(code) })
  // No registry: the worker gets the node image by docker save | docker load (a no-op when it has it).
  const tag = (await ensureNodeImage()).tag
  execFileSync('bash', [new URL('../scripts/setup-swarm.sh', import.meta.url).pathname, 'load', tag], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 })
  const runs: SwarmRun[] = []
  for (const e of [1, engines]) {
    const run = await measureSwarmRun({ engines: e, n: values.weak ? n * e : n, seed, deadlineMs: Number(values['deadline-s'] ?? 600) * 1000, pin: !values['no-pin'], newcomers: e === engines ? newcomers : 0, profile, log })
    log(`engines=${e}: ${run.verified}/${run.n} verified in ${run.convergeMs ?? '—'} ms (start ${run.startMs} ms), ${run.verifiedPerMinutePerEngine ?? '—'} per minute per engine, CPU ${run.engineCpuS.join(' + ')} s${run.error != null ? `; error: ${run.error.split('\n')[0]}` : ''}`)
    runs.push(run)
  }
  const [one, many] = [runs[0]!, runs.at(-1)!]
  const result: SwarmScaleResult = {
    seed,
    profile,
    n,
    weak: values.weak,
    verifiedDefinition: POPULATION_VERIFIED_DEFINITION,
    runs,
    perEngineRatio: one.verifiedPerMinutePerEngine != null && many.verifiedPerMinutePerEngine != null ? round(many.verifiedPerMinutePerEngine / one.verifiedPerMinutePerEngine, 2) : null,
    machine: { cpus: os.availableParallelism(), engines }
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
  process.exit(runs.some(r => r.error != null) ? 1 : 0)
}
