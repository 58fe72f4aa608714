import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ReportSchema } from '../reports/index.ts'
import { ROOT, runCli } from './test-support.ts'

const dirs: string[] = []

async function tmp (): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'chiral-cli-'))
  dirs.push(d)
  return d
}

const cli = runCli

afterAll(async () => { await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) })) })

describe('chiral-sim CLI', () => {
  it('--help works on every command', async () => {
    for (const cmd of [[], ['run'], ['list'], ['validate'], ['report'], ['schema']]) {
      const r = await cli([...cmd, '--help'])
      expect(r.code, cmd.join(' ')).toBe(0)
      expect(r.stdout).toContain('chiral-sim')
    }
    // It printed the schema itself.
    expect((await cli(['schema', '--help'])).stdout).toMatch(/^chiral-sim schema\n\nPrints the JSON Schema/)
  })

  it('a mistyped command or option gets a "did you mean"', async () => {
    const cmd = await cli(['valdate', 'x.yaml'])
    expect(cmd.code).toBe(2)
    expect(cmd.stderr).toMatch(/^chiral-sim: unknown command "valdate" \(did you mean "validate"\?\)/)
    const opt = await cli(['run', '--seeed', '3'])
    expect(opt.code).toBe(2)
    expect(opt.stderr).toMatch(/Unknown option '--seeed' \(did you mean "--seed"\?\)/)
    expect((await cli(['lsit'])).stderr).toMatch(/unknown command "lsit" \(did you mean "list"\?\)/)
    expect((await cli(['frobnicate'])).stderr).not.toMatch(/did you mean/)
  })

  it('--junit without a path writes the default REPORT-DIR/junit.xml', async () => {
    for (const args of [['test/fixtures/failing.yaml', '--junit'], ['--junit', 'test/fixtures/failing.yaml'], ['--junit', '--seed', '1', 'test/fixtures/failing.yaml']]) {
      const dir = await tmp()
      const r = await cli(['run', ...args, '--report-dir', dir])
      expect(r.code, args.join(' ')).toBe(1)
      expect((await stat(path.join(dir, 'junit.xml'))).isFile()).toBe(true)
    }
    const dir = await tmp()
    expect((await cli(['run', 'test/fixtures/failing.yaml', '--junit', path.join(dir, 'j.xml'), '--report-dir', dir])).code).toBe(1)
    expect((await stat(path.join(dir, 'j.xml'))).isFile()).toBe(true)
  })

  it('validate: a population of a billion is exit 2 at once naming the field, not an out-of-memory abort', async () => {
    const dir = await tmp()
    const file = path.join(dir, 'huge.yaml')
    await writeFile(file, 'name: huge\ntitle: huge\nnodes: [{ role: bootstrap, name: boot }, { role: peer, name: p, count: 1000000000 }]\nsteps: [{ action: start, nodes: [boot, p] }, { action: connect, nodes: [p], expect: { success: true } }]\n')
    const started = Date.now()
    const r = await cli(['validate', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`${file}: invalid scenario\n  nodes[1].count: Too big: expected number to be <=2000`)
    expect(Date.now() - started).toBeLessThan(20_000)
  })

  it('validate: a YAML syntax error shows file:line:col and a code frame', async () => {
    const dir = await tmp()
    const file = path.join(dir, 'bad.yaml')
    await writeFile(file, 'name: t\ntitle: T\nnodes: [{ role: peer, name: A }\nsteps: []\n')
    const r = await cli(['validate', file])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: not valid YAML: .*\n  \\d \\| .*\n +\\| +\\^\n`))
  })

  it('--peers that makes a group member shadow a declared node is exit 2 before anything runs', async () => {
    const dir = await tmp()
    const file = path.join(dir, 'group.yaml')
    await writeFile(file, 'name: group\ntitle: group\nnodes: [{ role: bootstrap, name: boot }, { role: peer, name: p, count: 2 }, { role: peer, name: p-5 }]\nsteps: [{ action: start, nodes: [boot, p] }, { action: connect, nodes: [p], expect: { success: true } }]\n')
    const r = await cli(['run', file, '--peers', '6', '--report-dir', dir])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--peers 6: .*group\.yaml: invalid scenario\n  nodes\[2\]\.name: "p-5" is also a member of the group "p" \(count 6\)/)
  })

  it('list keeps its columns aligned however long the tags are', async () => {
    const dir = await tmp()
    const tags = Array.from({ length: 20 }, (_, i) => `a-rather-long-tag-number-${i}`)
    await writeFile(path.join(dir, 'a.yaml'), `name: a\ntitle: A\ntags: [${tags.join(', ')}]\nnodes: [{ role: peer, name: A }]\nsteps: [{ action: wait, until: { routingTable: { node: A, minPeers: 0 } }, timeoutMs: 100 }]\n`)
    await writeFile(path.join(dir, 'b.yaml'), 'name: b\ntitle: B\nplanTest: 1\nnodes: [{ role: peer, name: A }]\nsteps: [{ action: wait, until: { routingTable: { node: A, minPeers: 0 } }, timeoutMs: 100 }]\n')
    const r = await cli(['list', dir])
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(2)
    const fileColumn = lines.map(l => l.indexOf(path.relative(ROOT, dir)))
    expect(fileColumn[0]).toBe(fileColumn[1])
    expect(fileColumn[0]).toBeLessThan(100)
    expect(lines[0]).toContain('…')
  })

  it('validate: 0 for a good file, 2 with file and field for a bad one, never a stack trace', async () => {
    expect((await cli(['validate', 'scenarios/plan/3-bidirectional-discovery.yaml'])).code).toBe(0)
    const bad = await cli(['validate', 'test/fixtures/bad-field.yaml'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/test\/fixtures\/bad-field\.yaml: invalid scenario[\s\S]*nodes\[0\]: unknown field\(s\) "bootstrap"/)
    expect(bad.stderr).not.toMatch(/\n\s+at /)
  })

  it('exit 2 for an unknown option, an unknown mode, a missing path and a bad time scale', async () => {
    for (const args of [['run', '--colour'], ['run', '--mode', 'cloud'], ['run', 'no/such/dir'], ['run', '--time-scale', '3'], ['frobnicate']]) {
      const r = await cli(args)
      expect(r.code, args.join(' ')).toBe(2)
      expect(r.stderr).toMatch(/^chiral-sim: /)
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('exit 1 when a scenario fails, with a valid report.json, report.html and JUnit naming the failure', async () => {
    const dir = await tmp()
    const r = await cli(['run', 'test/fixtures/failing.yaml', '--seed', '5', '--report-dir', dir])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/✘ deliberately-failing\s+failed/)
    const report = ReportSchema.parse(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')))
    expect(report.run.seed).toBe(5)
    expect(report.scenarios[0]?.status).toBe('failed')
    expect(await readFile(path.join(dir, 'junit.xml'), 'utf8')).toMatch(/<failure/)
    expect(await readFile(path.join(dir, 'report.html'), 'utf8')).toContain('deliberately-failing')
  })

  it('Ctrl-C tears the run down, still writes the report and exits 130', async () => {
    const dir = await tmp()
    const started = Date.now()
    const r = await cli(['run', 'test/fixtures/slow.yaml', '--report-dir', dir, '--mode', 'tcp'], { interruptAfter: /scenario\(s\)/ })
    expect(r.code).toBe(130)
    expect(Date.now() - started).toBeLessThan(30_000)
    const report = ReportSchema.parse(JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')))
    expect(report.scenarios[0]?.status).toBe('error')
    expect(report.scenarios[0]?.reason).toBe('interrupted')
  })

  it('report DIR rebuilds the HTML from report.json; a missing one is a clear error', async () => {
    const dir = await tmp()
    await cli(['run', 'test/fixtures/failing.yaml', '--report-dir', dir])
    await rm(path.join(dir, 'report.html'))
    expect((await cli(['report', dir])).code).toBe(0)
    expect(await readFile(path.join(dir, 'report.html'), 'utf8')).toContain('<html')
    const missing = await cli(['report', path.join(dir, 'nope')])
    expect(missing.code).toBe(2)
  })
})
