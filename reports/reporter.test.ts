import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { fixtureRunRecord } from './fixtures.ts'
import { buildReport } from './build-report.ts'
import { BUILTIN_REPORTERS, loadReporter, ReporterError, runReporters, type Reporter } from './reporter.ts'
import { writeReports } from './write.ts'

const dirs: string[] = []
const tmp = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'chiral-reporter-')); dirs.push(d); return d }
afterAll(async () => { await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) })) })

const report = buildReport(fixtureRunRecord())

describe('reporters', () => {
  it('loads a built-in by name, and a module exporting an object, a factory or a class', async () => {
    const dir = await tmp()
    expect(Object.keys(BUILTIN_REPORTERS)).toEqual(['json', 'html', 'junit', 'summary'])
    expect((await loadReporter('junit', { outputDir: dir })).name).toBe('junit')
    const modules = {
      'object.mjs': 'export default { name: "object", onRunEnd () { return [] } }',
      'factory.mjs': 'export default (options) => ({ name: "factory:" + options.outputDir, onRunEnd () {} })',
      'class.mjs': 'export default class { constructor (o) { this.name = "class" } onRunEnd () {} }',
      'named.mjs': 'export const reporter = { name: "named", onRunEnd () {} }'
    }
    for (const [file, source] of Object.entries(modules)) await writeFile(join(dir, file), source)
    expect((await loadReporter('./object.mjs', { outputDir: dir }, dir)).name).toBe('object')
    expect((await loadReporter(join(dir, 'factory.mjs'), { outputDir: '/out' })).name).toBe('factory:/out')
    expect((await loadReporter('./class.mjs', { outputDir: dir }, dir)).name).toBe('class')
    expect((await loadReporter('./named.mjs', { outputDir: dir }, dir)).name).toBe('named')
    await expect(loadReporter('./none.mjs', { outputDir: dir }, dir)).rejects.toThrow(ReporterError)
  })

  it('runs every reporter even when one throws, then names the one that failed', async () => {
    const dir = await tmp()
    const calls: string[] = []
    const ok = (name: string): Reporter => ({ name, onRunEnd: async (r, ctx) => { calls.push(name); return [await ctx.writeFile(`${name}.txt`, String(r.summary.total))] } })
    const broken: Reporter = { name: 'broken', onRunEnd: () => { throw new Error('boom') } }
    await expect(runReporters([ok('a'), broken, ok('b')], report, dir)).rejects.toThrow(/reporter "broken" failed: boom \(the other reports were written: .*a\.txt, .*b\.txt\)/)
    expect(calls).toEqual(['a', 'b'])
    expect(await readFile(join(dir, 'b.txt'), 'utf8')).toBe('8')
  })

  it('writeReports runs the built-in reporters, then the extra ones, over the same report', async () => {
    const dir = await tmp()
    let seen: string | undefined
    const written = await writeReports(fixtureRunRecord(), dir, { reporters: [{ name: 'spy', onRunEnd: r => { seen = r.run.id } }] })
    expect(seen).toBe('run-fixture-0001')
    expect(written.files.map(f => f.slice(dir.length + 1))).toEqual(['report.json', 'report.html', 'junit.xml'])
  })
})
