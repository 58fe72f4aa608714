/**
 * chiral-sim benchmarks: scale (N peers in one process), latency (mutual visibility, connect-timeout precision),
 * Toxiproxy overhead, and the built-in suite's wall time. `npm run bench` runs all of it (~15 min);
 * `--quick` runs N = 10, 100 and fewer runs; `--only scale,latency,toxiproxy,suite` picks parts.
 * Results: bench/results/<time>-seed<seed>.json and bench/results/latest.json; a table on stdout.
 */
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { VERSIONS } from '../nodes/node.ts'
import { newSeed } from '../sim/seed.ts'
import { measureConnectTimeout, measureMutualVisibility, measureToxiproxyOverhead } from './latency.ts'
import type { ScaleResult } from './scale.ts'
import { SCALE_PROFILE_NAMES, type ScaleProfile } from './profiles.ts'
import { measureSuite, type SuiteFigure } from './suite.ts'
import type { BenchResults } from './results.ts'
import { renderTable } from './table.ts'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const PARTS = ['scale', 'latency', 'toxiproxy', 'suite'] as const
type Part = typeof PARTS[number]

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    seed: { type: 'string' },
    sizes: { type: 'string' },
    profiles: { type: 'string' },
    'suite-modes': { type: 'string' },
    help: { type: 'boolean', default: false }
  }
})
if (values.help) {
  process.stdout.write(`usage: node bench/main.ts [--quick] [--only scale|latency|toxiproxy|suite[,…]] [--seed N] [--sizes 10,100,200,500,1000] [--profiles ${SCALE_PROFILE_NAMES.join(',')}] [--suite-modes memory,tcp,process]\n`)
  process.exit(0)
}
const only = values.only == null ? [...PARTS] : values.only.split(',').map(s => s.trim())
for (const p of only) {
  if (!(PARTS as readonly string[]).includes(p)) {
    process.stderr.write(`--only: unknown part "${p}"; use ${PARTS.join(', ')}\n`)
    process.exit(2)
  }
}
const want = (p: Part): boolean => only.includes(p)
const quick = values.quick
const seed = values.seed != null ? Number(values.seed) : newSeed()
const sizes = values.sizes != null ? values.sizes.split(',').map(Number) : quick ? [10, 100] : [10, 100, 200, 500, 1000]
const profiles = (values.profiles ?? (quick ? 'kad-dht-defaults' : SCALE_PROFILE_NAMES.join(','))).split(',').map(p => p.trim())
for (const p of profiles) {
  if (!(SCALE_PROFILE_NAMES as string[]).includes(p)) {
    process.stderr.write(`--profiles: unknown profile "${p}"; use ${SCALE_PROFILE_NAMES.join(', ')}\n`)
    process.exit(2)
  }
}
for (const n of sizes) {
  if (!Number.isInteger(n) || n < 2) {
    process.stderr.write(`--sizes: "${values.sizes ?? ''}" must be whole numbers of peers, at least 2 each, e.g. 10,100,500\n`)
    process.exit(2)
  }
}
const suiteModes = (values['suite-modes'] ?? (quick ? 'memory' : 'memory,tcp,process')).split(',') as Array<'memory' | 'tcp' | 'process' | 'docker'>
const NODE = process.execPath
const log = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`) }
log(`seed ${seed}${quick ? ' (quick)' : ''}; parts: ${only.join(', ')}; node ${process.version}`)

const results: BenchResults = {
  schemaVersion: 2,
  startedAt: new Date().toISOString(),
  seed,
  quick,
  argv: process.argv.slice(2),
  machine: {
    platform: process.platform,
    arch: process.arch,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryMiB: Math.round(os.totalmem() / 1048576),
    node: process.version,
    libp2p: VERSIONS.libp2p,
    kadDht: VERSIONS.kadDht
  }
}

/** One N in its own process: a crash or an out-of-memory there is a figure, not the end of the bench. */
async function runScaleChild (n: number, profile: ScaleProfile): Promise<NonNullable<BenchResults['scale']>[number]> {
  const args = ['--max-old-space-size=4096', path.join(HERE, 'scale-child.ts'), '--n', String(n), '--seed', String(seed), '--profile', profile]
  const command = scaleCommand(n, profile)
  log(`scale N=${n} (${profile}): ${command}`)
  // DEBUG_COLORS: libp2p's logger otherwise asks isatty() for every stream it names, 3 % of an idle run's CPU.
  const child = spawn(NODE, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBUG_COLORS: 'no' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); process.stderr.write(d) })
  // 120 s to converge, 10 s of visibility, ≤ 30 s of lookups, teardown: 5 minutes is the hard ceiling.
  const kill = setTimeout(() => { child.kill('SIGKILL') }, 300_000)
  const exit = await new Promise<string>(resolve => { child.on('exit', (code, signal) => { resolve(signal != null ? `signal ${signal}` : `code ${code}`) }) })
  clearTimeout(kill)
  const line = stdout.split('\n').find(l => l.startsWith('RESULT '))
  if (line != null) return JSON.parse(line.slice(7)) as ScaleResult
  return { n, profile, crashed: true, exit, stderrTail: stderr.split('\n').slice(-15).join('\n'), command }
}

function scaleCommand (n: number, profile: ScaleProfile): string {
  return `DEBUG_COLORS=no node --max-old-space-size=4096 bench/scale-child.ts --n ${n} --seed ${seed} --profile ${profile}`
}

const t0 = performance.now()
if (want('scale')) {
  results.scale = []
  results.scaleCommands = {}
  results.largestConvergedN = {}
  for (const profile of profiles as ScaleProfile[]) {
    for (const n of sizes) {
      const r = await runScaleChild(n, profile)
      results.scale.push(r)
      results.scaleCommands[`${profile}/${n}`] = scaleCommand(n, profile)
    }
    const converged = results.scale.filter((r): r is ScaleResult => !('crashed' in r) && r.profile === profile && r.converged).map(r => r.n)
    results.largestConvergedN[profile] = converged.length > 0 ? Math.max(...converged) : null
  }
}
if (want('latency')) {
  const runs = quick ? 5 : 20
  log(`latency: mutual visibility, ${runs} runs (chiral-sim defaults: first self-query at once)`)
  const mutualVisibility = await measureMutualVisibility({ runs, seed })
  log(`latency: mutual visibility, ${runs} runs (kad-dht's stock first self-query after 1 s)`)
  const mutualVisibilityKadStock = await measureMutualVisibility({ runs, seed, initialQuerySelfIntervalMs: 1_000 })
  log('latency: connect timeout against a TCP blackhole (10 s)')
  const connectTimeout = await measureConnectTimeout({ runs: quick ? 2 : 5, seed })
  results.latency = {
    mutualVisibility,
    mutualVisibilityKadStock,
    connectTimeout,
    commands: {
      mutualVisibility: `node bench/main.ts --only latency --seed ${seed}`,
      connectTimeout: `node bench/main.ts --only latency --seed ${seed}`
    }
  }
}
if (want('toxiproxy')) {
  log('toxiproxy: echo round trip, direct vs through a clean proxy')
  results.toxiproxyCommand = 'bash scripts/setup-toxiproxy.sh && node bench/main.ts --only toxiproxy'
  results.toxiproxy = await measureToxiproxyOverhead({ samples: quick ? 1_000 : 5_000 }).catch((err: unknown) => ({ error: String((err as Error).message ?? err) }))
}
if (want('suite')) {
  results.suite = []
  results.suiteCommand = `node bench/main.ts --only suite --suite-modes ${suiteModes.join(',')} --seed ${seed}`
  for (const mode of suiteModes) {
    log(`suite: ${mode} mode`)
    results.suite.push(await measureSuite(mode, seed))
  }
}
results.endedAt = new Date().toISOString()
log(`done in ${Math.round((performance.now() - t0) / 1000)} s`)

const dir = path.join(HERE, 'results')
await mkdir(dir, { recursive: true })
const file = path.join(dir, `${results.startedAt.replace(/[:.]/g, '-')}-seed${seed}${quick ? '-quick' : ''}.json`)
const json = JSON.stringify(results, null, 2) + '\n'
await writeFile(file, json)
await writeFile(path.join(dir, 'latest.json'), json)
process.stdout.write(renderTable(results) + '\n')
process.stdout.write(`\nresults: ${path.relative(process.cwd(), file)} (and bench/results/latest.json)\n`)
process.stdout.write(`markdown: node bench/render.ts ${path.relative(process.cwd(), file)} --markdown\n`)
// Nothing should be left running; never let a stray handle hang `npm run bench`.
setTimeout(() => process.exit(0), 500).unref()
