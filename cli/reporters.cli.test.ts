import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli, type CliResult } from './test-support.ts'

/** `--summary`, $GITHUB_STEP_SUMMARY and `--reporter` as a CI pipeline uses them: the CLI as a child process. */

const FAILING = 'test/fixtures/failing.yaml'
const dirs: string[] = []

async function tmp (): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'chiral-reporters-'))
  dirs.push(d)
  return d
}

const cli = async (args: string[], env: Record<string, string> = {}): Promise<CliResult> => await runCli(args, { env })

afterAll(async () => { await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) })) })

/** A user's reporter, as a plain ES module outside the repository: it writes the failing scenarios' names. */
const CUSTOM_REPORTER = `export default function failures (options) {
  return {
    name: 'failures-txt',
    async onRunEnd (report, context) {
      const names = report.scenarios.filter(s => s.outcome !== 'passed').map(s => s.name)
      return [await context.writeFile('failures.txt', names.join('\\n') + '\\n' + options.outputDir + '\\n')]
    }
  }
}
`

describe('chiral-sim run: summary and reporters', () => {
  it('writes the markdown summary to --summary, appends it to $GITHUB_STEP_SUMMARY, and runs a user\'s reporter', async () => {
    const dir = await tmp()
    const summary = path.join(dir, 'out', 'summary.md')
    const stepSummary = path.join(dir, 'step-summary.md')
    await writeFile(stepSummary, 'written by an earlier step\n')
    const reporter = path.join(dir, 'failures-reporter.mjs')
    await writeFile(reporter, CUSTOM_REPORTER)
    const reportDir = path.join(dir, 'reports')
    const r = await cli(['run', FAILING, '--seed', '5', '--report-dir', reportDir, '--summary', summary, '--reporter', reporter],
      { GITHUB_STEP_SUMMARY: stepSummary })
    expect(r.code).toBe(1)
    const md = await readFile(summary, 'utf8')
    expect(md).toMatch(/^## chiral-sim: ✘ 1 scenario of 1 did not pass/)
    expect(md.indexOf('### Failures')).toBeGreaterThan(0)
    expect(md.indexOf('### Failures')).toBeLessThan(md.indexOf('### KPIs'))
    expect(md).toContain('deliberately-failing')
    expect(md).toMatch(/\*\*Step 1\*\* \(connect: /)
    const appended = await readFile(stepSummary, 'utf8')
    expect(appended.startsWith('written by an earlier step\n## chiral-sim: ✘')).toBe(true)
    expect(await readFile(path.join(reportDir, 'failures.txt'), 'utf8')).toBe(`deliberately-failing\n${reportDir}\n`)
    expect(r.stdout).toContain(path.join(reportDir, 'failures.txt'))
  }, 60_000)

  it('a reporter that cannot be loaded is bad input, found before anything runs (exit 2)', async () => {
    const dir = await tmp()
    const missing = await cli(['run', FAILING, '--report-dir', dir, '--reporter', './no/such-reporter.ts'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/--reporter \.\/no\/such-reporter\.ts: cannot load .*no\/such-reporter\.ts/)
    expect(missing.stdout).not.toContain('scenario(s)')
    expect(missing.stderr).not.toMatch(/\n\s+at /)
    const unknown = await cli(['run', FAILING, '--report-dir', dir, '--reporter', 'xml'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('--reporter xml: not a built-in reporter (json, html, junit, summary)')
    const notAReporter = path.join(dir, 'nothing.mjs')
    await writeFile(notAReporter, 'export const x = 1\n')
    const bad = await cli(['run', FAILING, '--report-dir', dir, '--reporter', notAReporter])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('must export (as default or as "reporter") an object with an onRunEnd(report, context) method')
  }, 60_000)

  it('a reporter that throws: the others still write, exit 2 names it', async () => {
    const dir = await tmp()
    const throwing = path.join(dir, 'throwing.mjs')
    await writeFile(throwing, 'export default { name: "broken", onRunEnd () { throw new Error("disk on fire") } }\n')
    const r = await cli(['run', FAILING, '--report-dir', dir, '--reporter', throwing])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('reporter "broken" failed: disk on fire')
    expect(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')).scenarios[0].name).toBe('deliberately-failing')
  }, 60_000)

  it('report DIR runs reporters over an earlier run without re-running it', async () => {
    const dir = await tmp()
    expect((await cli(['run', FAILING, '--seed', '5', '--report-dir', dir])).code).toBe(1)
    const summary = path.join(dir, 'later.md')
    const stepSummary = path.join(dir, 'step.md')
    const r = await cli(['report', dir, '--summary', summary, '--reporter', 'junit'], { GITHUB_STEP_SUMMARY: stepSummary })
    expect(r.code).toBe(0)
    expect(await readFile(summary, 'utf8')).toContain('deliberately-failing')
    // A rebuild is not a run: the CI summary gets it only through --summary.
    await expect(readFile(stepSummary, 'utf8')).rejects.toThrow(/ENOENT/)
  }, 60_000)
})
