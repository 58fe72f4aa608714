#!/usr/bin/env node
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import path from 'node:path'
import { stat } from 'node:fs/promises'
import { ModeSchema, type Mode } from '../scenarios/record.ts'
import { formatIssues, InputError, loadBuiltin, loadScenarios, findScenarioFiles, loadScenarioFile, type LoadedScenario } from '../scenarios/load.ts'
import { MAX_POPULATION, ScenarioSchema } from '../scenarios/schema.ts'
import { scenarioJsonSchema } from '../scenarios/json-schema.ts'
import { readReport, rebuildReports, runSummary, summaryLine, writeReports, buildReport, loadReporter, summaryReporter, type Reporter } from '../reports/index.ts'
import { runSuite } from '../sim/suite.ts'
import { newSeed } from '../sim/seed.ts'
import { describeError } from '../nodes/util.ts'
import { didYouMean } from '../nodes/suggest.ts'
import { TimeScaleSchema } from '../nodes/config.ts'
import { INTEROP_HELP, interopCommand } from '../sim/interop/cli.ts'

const HELP: Record<string, string> = {
  main: `chiral-sim — bootstrap-stability scenarios for a libp2p network

Usage:
  chiral-sim [run] [files or folders…] [options]   run scenarios (default: the built-in suite, memory mode)
  chiral-sim list [files or folders…]              list scenarios
  chiral-sim validate FILE…                        check scenario files against the schema
  chiral-sim report DIR [--baseline OLD/report.json] [--summary PATH] [--reporter R]
                                                   rebuild report.html (and other reports) from DIR/report.json
  chiral-sim schema                                print the scenario JSON Schema
  chiral-sim clean [--all]                         remove what runs whose harness died left behind
  chiral-sim interop [--mode tcp] [options]        the interop matrix: js, rust, go bootstraps × the plan's tests

Run "chiral-sim <command> --help" for a command's options.
Exit codes: 0 all passed, 1 a scenario failed, 2 bad input or usage, 130 interrupted.`,
  run: `chiral-sim run [files or folders…] [options]

Runs scenarios and writes report.json, report.html and junit.xml. With no paths, runs the built-in suite.

Options:
  --mode MODE          memory (default) | tcp | shards | process | docker | swarm
  --seed N             seed for identities, content and schedules (default: random, printed and in the report)
  --time-scale X       0 < X ≤ 1; 1 = the plan's real timings (default: each scenario's own, 0.1 for the suite)
  --peers N            resize every peer group (peers declared with "count") to N (1–${MAX_POPULATION})
  --filter REGEX       run only scenarios whose name matches
  --report-dir DIR     where reports go (default: chiral-reports)
  --junit [PATH]       JUnit XML path (default, also for a bare --junit: REPORT-DIR/junit.xml; always written);
                       a next argument that is an option, a scenario file or a folder is not taken as PATH
  --baseline FILE      compare with an earlier report.json; regressions are listed first
  --summary PATH       also write a markdown summary (failures first, KPI table, interop matrix) for a CI step
                       summary; when $GITHUB_STEP_SUMMARY is set, the summary is appended there as well
  --reporter R         one more reporter: a built-in (json, html, junit, summary) or the path of a module
                       exporting one (see README, "Reporters"); repeatable
  --workers N          worker threads the scenarios are spread over, each scenario whole in one thread (default:
                       the machine's cores; 1 in docker and swarm modes); 1 runs everything in one thread
  --jobs N             scenarios run at once over all workers (default: the workers, at least 2; 1 in docker and
                       swarm modes)
  -h, --help           this help`,
  list: `chiral-sim list [files or folders…]\n\nLists scenarios (default: the built-in suite) with their plan test and supported modes.`,
  validate: `chiral-sim validate FILE…\n\nValidates scenario files; prints one line per file, or the problems with their field paths. Exit 2 if any is invalid.`,
  report: `chiral-sim report DIR [--baseline OLD/report.json] [--summary PATH] [--reporter R]…\n\nRebuilds DIR/report.html (and the baseline comparison) from DIR/report.json without re-running anything; --summary and --reporter run those reporters over it too.`,
  schema: `chiral-sim schema\n\nPrints the JSON Schema of scenario files (also at scenarios/scenario.schema.json).`,
  clean: `chiral-sim clean [--all]

Removes what runs whose harness died (SIGKILL, OOM, a lost CI runner) left behind: orphaned toxiproxy-servers,
docker-mode containers and networks, and (when DOCKER_HOST is a swarm manager) swarm-mode services, secrets,
configs and networks whose owning harness (by host, boot, pid and start time, from their labels) is gone. Never
touches a live run's. Every docker and swarm run does the same when it starts.

Options:
  --all       also remove chiral-sim containers, networks and swarm objects whose owner cannot be checked from here
              (another machine's on a shared engine, or an older chiral-sim's): only when no other run uses it
  -h, --help  this help

Exit codes: 0 done, 1 something could not be removed.`,
  interop: INTEROP_HELP
}

class UsageError extends InputError {}

/** More threads than that is a typo: each holds a V8 heap (tens of MiB) before its first node. */
const MAX_WORKERS = 64

/** Every command has its help text: the list "did you mean" chooses from. */
const COMMANDS = [...Object.keys(HELP).filter(k => k !== 'main'), 'help']

type Parsed = { values: Record<string, string | boolean | string[] | undefined>, positionals: string[] }

function parse (args: string[], options: ParseArgsOptionsConfig, help: string): Parsed {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }) as Parsed
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional.*$/s, '')
    const unknown = /^Unknown option '(--[^']+)'/.exec(message)?.[1]
    const hint = unknown == null ? '' : didYouMean(unknown, [...Object.keys(options), 'help'].map(o => `--${o}`))
    throw new UsageError(`${message}${hint}\n\n${help}`)
  }
}

/**
 * `--junit [PATH]`: a bare --junit means the default path. parseArgs has no optional values, so a --junit whose next
 * argument is missing, an option, a scenario file or a folder is rewritten to its default before parsing.
 */
async function optionalJunitPath (args: string[]): Promise<string[]> {
  const out: string[] = []
  for (const [i, arg] of args.entries()) {
    if (arg !== '--junit') { out.push(arg); continue }
    const next = args[i + 1]
    const isPath = next != null && !next.startsWith('-') && !/\.(ya?ml|json)$/.test(next) &&
      (await stat(next).catch(() => null))?.isDirectory() !== true
    out.push(isPath ? arg : '--junit=')
  }
  return out
}

function numberOption (name: string, value: string | undefined, check: (n: number) => boolean, what: string): number | undefined {
  if (value == null) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} ${value}: ${what}`)
  return n
}

async function run (argv: string[]): Promise<number> {
  const args = await optionalJunitPath(argv)
  const { values, positionals } = parse(args, {
    mode: { type: 'string' }, seed: { type: 'string' }, 'time-scale': { type: 'string' }, peers: { type: 'string' },
    filter: { type: 'string' }, 'report-dir': { type: 'string' }, junit: { type: 'string' }, baseline: { type: 'string' }, jobs: { type: 'string' }, workers: { type: 'string' },
    ...REPORTER_OPTIONS
  }, HELP.run!)
  if (values.help === true) { console.log(HELP.run); return 0 }
  const modeResult = ModeSchema.safeParse(values.mode ?? 'memory')
  if (!modeResult.success) throw new UsageError(`--mode ${String(values.mode)}: unknown mode; use one of ${ModeSchema.options.join(', ')}`)
  const mode: Mode = modeResult.data
  const seed = numberOption('seed', values.seed as string | undefined, n => Number.isInteger(n) && n >= 0, 'the seed is a whole number ≥ 0') ?? newSeed()
  const timeScale = numberOption('time-scale', values['time-scale'] as string | undefined, n => TimeScaleSchema.safeParse(n).success, 'the time scale is a number with 0 < X ≤ 1 (1 = real time)')
  const peers = numberOption('peers', values.peers as string | undefined, n => Number.isInteger(n) && n >= 1 && n <= MAX_POPULATION, `the number of peers is a whole number from 1 to ${MAX_POPULATION}`)
  const jobs = numberOption('jobs', values.jobs as string | undefined, n => Number.isInteger(n) && n >= 1 && n <= 16, 'jobs is a whole number from 1 to 16')
  const workers = numberOption('workers', values.workers as string | undefined, n => Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS, `workers is a whole number from 1 to ${MAX_WORKERS}`)
  let filter: RegExp | undefined
  if (values.filter != null) {
    try { filter = new RegExp(values.filter as string) } catch (err) { throw new UsageError(`--filter: not a valid regular expression (${(err as Error).message})`) }
  }
  const baseline = values.baseline != null ? await readReport(values.baseline as string) : undefined
  let scenarios = positionals.length === 0 ? await loadBuiltin() : await loadScenarios(positionals)
  if (filter != null) scenarios = scenarios.filter(s => filter.test(s.scenario.name))
  if (scenarios.length === 0) throw new UsageError(`--filter ${String(values.filter)}: no scenario matches; "chiral-sim list" shows their names`)
  if (peers != null) scenarios = scenarios.map(s => resized(s, peers))
  const reportDir = (values['report-dir'] as string | undefined) ?? 'chiral-reports'
  // Loaded before the run: a reporter that cannot load is bad input, found without running anything.
  const reporters = await extraReporters(values, reportDir, process.env.GITHUB_STEP_SUMMARY)
  const interactive = process.stdout.isTTY === true && process.env.CI == null
  console.log(`chiral-sim: ${scenarios.length} scenario(s), mode ${mode}, seed ${seed}${timeScale != null ? `, time scale ${timeScale}` : ''}${workers != null ? `, ${workers} worker(s)` : ''}`)
  const controller = new AbortController()
  let interrupts = 0
  const onSigint = (): void => {
    interrupts++
    if (interrupts > 1) process.exit(130)
    console.error('\nchiral-sim: interrupted — tearing down (Ctrl-C again to force)')
    controller.abort(new Error('interrupted'))
  }
  process.on('SIGINT', onSigint)
  process.on('SIGTERM', onSigint)
  const record = await runSuite(scenarios, {
    mode, seed, timeScale, jobs, workers, signal: controller.signal, argv: process.argv.slice(2),
    onStep: interactive ? (name, label) => { process.stdout.write(`\r\x1b[2K  … ${name}: ${label}`.slice(0, process.stdout.columns ?? 120)) } : undefined,
    onScenarioEnd: (r) => {
      if (interactive) process.stdout.write('\r\x1b[2K')
      console.log(summaryLine(r as Parameters<typeof summaryLine>[0]))
    }
  })
  // The handlers stay until the reports are written: a Ctrl-C that arrives meanwhile must not kill the process
  // half-way through report.json (a second one still forces the exit).
  try {
    const junit = values.junit === '' ? undefined : values.junit as string | undefined
    const report = buildReport(record, baseline != null ? { baseline } : {})
    console.log(runSummary(report))
    const written = await writeReports(record, reportDir, { ...(baseline != null ? { baseline } : {}), junit: junit ?? true, reporters })
    console.log(`reports: ${written.files.join(', ')}`)
  } finally {
    process.off('SIGINT', onSigint)
    process.off('SIGTERM', onSigint)
  }
  if (controller.signal.aborted) return 130
  return record.scenarios.every(s => s.status === 'passed' || s.status === 'skipped') ? 0 : 1
}

/**
 * `--peers N` resizes every group, which can make a group member shadow a declared node or a member name too long:
 * the resized scenario is validated again, as a file would be.
 */
function resized ({ file, scenario }: LoadedScenario, peers: number): LoadedScenario {
  const nodes = scenario.nodes.map(n => n.role === 'peer' && n.count != null ? { ...n, count: peers } : n)
  const result = ScenarioSchema.safeParse({ ...scenario, nodes })
  if (!result.success) throw new UsageError(`--peers ${peers}: ${formatIssues(file, result.error)}`)
  return { file, scenario: result.data }
}

/** A cell cut to `width` characters with an ellipsis, padded, so columns stay aligned. */
function cell (text: string, width: number): string {
  return (text.length > width ? `${text.slice(0, width - 1)}…` : text).padEnd(width)
}

async function list (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {}, HELP.list!)
  if (values.help === true) { console.log(HELP.list); return 0 }
  const scenarios = positionals.length === 0 ? await loadBuiltin() : await loadScenarios(positionals)
  const rows = scenarios.map(({ scenario, file }) => [
    scenario.name,
    scenario.planTest != null ? `Test ${scenario.planTest}` : scenario.tags.join(','),
    (scenario.modes ?? ['all modes']).join(','),
    path.relative(process.cwd(), file)
  ] as const)
  // Each column as wide as its widest entry, up to a cap; the file path comes last and is never cut.
  const caps = [40, 24, 28]
  const widths = caps.map((cap, i) => Math.min(cap, Math.max(...rows.map(r => r[i]!.length))))
  for (const row of rows) console.log(`${widths.map((w, i) => cell(row[i]!, w)).join(' ')} ${row[3]}`)
  return 0
}

async function validate (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {}, HELP.validate!)
  if (values.help === true) { console.log(HELP.validate); return 0 }
  if (positionals.length === 0) throw new UsageError(`validate needs at least one scenario file\n\n${HELP.validate}`)
  let bad = 0
  for (const file of await findScenarioFiles(positionals)) {
    try {
      const s = await loadScenarioFile(file)
      console.log(`ok  ${file}  (${s.name}: ${s.nodes.length} node specs, ${s.steps.length} steps)`)
    } catch (err) {
      if (!(err instanceof InputError)) throw err
      bad++
      console.error(err.message)
    }
  }
  return bad === 0 ? 0 : 2
}

function schema (args: string[]): number {
  const { values, positionals } = parse(args, {}, HELP.schema!)
  if (values.help === true) { console.log(HELP.schema); return 0 }
  if (positionals.length > 0) throw new UsageError(`schema takes no arguments\n\n${HELP.schema}`)
  console.log(JSON.stringify(scenarioJsonSchema(), null, 2))
  return 0
}

async function cleanCommand (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { all: { type: 'boolean' } }, HELP.clean!)
  if (values.help === true) { console.log(HELP.clean); return 0 }
  if (positionals.length > 0) throw new UsageError(`clean takes no arguments\n\n${HELP.clean}`)
  // Loaded here: it brings the docker client, which no other command needs.
  const { clean } = await import('../sim/clean.ts')
  const result = await clean({ all: values.all === true })
  for (const line of result.lines) console.log(line)
  return result.ok ? 0 : 1
}

async function report (args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { baseline: { type: 'string' }, ...REPORTER_OPTIONS }, HELP.report!)
  if (values.help === true) { console.log(HELP.report); return 0 }
  if (positionals.length !== 1) throw new UsageError(`report needs exactly one report folder\n\n${HELP.report}`)
  const baseline = values.baseline != null ? await readReport(values.baseline as string) : undefined
  // A rebuild is not a CI run's result: it does not append to $GITHUB_STEP_SUMMARY unless asked with --summary.
  const reporters = await extraReporters(values, positionals[0]!, undefined)
  const written = await rebuildReports(positionals[0]!, { ...(baseline != null ? { baseline } : {}), reporters })
  console.log(`rebuilt ${written.files.join(', ')}`)
  return 0
}

const REPORTER_OPTIONS: ParseArgsOptionsConfig = { summary: { type: 'string' }, reporter: { type: 'string', multiple: true } }

/** The markdown summary (--summary, $GITHUB_STEP_SUMMARY) and the --reporter ones, in that order. */
async function extraReporters (values: Parsed['values'], outputDir: string, stepSummary: string | undefined): Promise<Reporter[]> {
  const summaryPath = values.summary as string | undefined
  const appendTo = stepSummary != null && stepSummary !== '' ? stepSummary : undefined
  const summary = summaryPath != null || appendTo != null
    ? [summaryReporter({ ...(summaryPath != null ? { path: path.resolve(summaryPath) } : {}), ...(appendTo != null ? { appendTo } : {}) })]
    : []
  const specs = (values.reporter as string[] | undefined) ?? []
  return [...summary, ...await Promise.all(specs.map(async spec => await loadReporter(spec, { outputDir })))]
}

export async function main (argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  try {
    switch (first) {
      case undefined: return await run([])
      case 'run': return await run(rest)
      case 'list': return await list(rest)
      case 'validate': return await validate(rest)
      case 'report': return await report(rest)
      case 'schema': return schema(rest)
      case 'clean': return await cleanCommand(rest)
      case 'interop': return await interopCommand(rest)
      case '-h': case '--help': case 'help': console.log(HELP.main); return 0
      default:
        // "chiral-sim scenarios/x.yaml --mode tcp" reads as a run.
        if (first.startsWith('-') || /\.(ya?ml|json)$/.test(first) || first.includes('/')) return await run(argv)
        throw new UsageError(`unknown command "${first}"${didYouMean(first, COMMANDS)}\n\n${HELP.main}`)
    }
  } catch (err) {
    const name = (err as Error)?.name
    if (err instanceof InputError || name === 'ReportFileError' || name === 'ReporterError' || name === 'ToxiproxyUnavailableError') {
      console.error(`chiral-sim: ${(err as Error).message}`)
      return 2
    }
    console.error(`chiral-sim: internal error: ${describeError(err)}\n(set CHIRAL_DEBUG=1 for the stack trace)`)
    if (process.env.CHIRAL_DEBUG != null) console.error(err)
    return 1
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2))
}
