import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixtureRunRecord } from './fixtures.ts'
import { buildReport } from './build-report.ts'
import { ReportSchema } from './report-schema.ts'
import { readReport, rebuildReports, ReportFileError, writeReports } from './write.ts'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'chiral-reports-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('writeReports', () => {
  it('writes report.json, report.html and junit.xml', async () => {
    const out = await writeReports(fixtureRunRecord(), join(dir, 'run'))
    const files = ['report.json', 'report.html', 'junit.xml'].map(f => join(dir, 'run', f))
    expect(out).toEqual({ jsonPath: files[0], htmlPath: files[1], junitPath: files[2], files })
    const report = ReportSchema.parse(JSON.parse(await readFile(out.jsonPath, 'utf8')))
    expect(report).toEqual(buildReport(fixtureRunRecord()))
    expect(await readFile(out.htmlPath, 'utf8')).toMatch(/^<!DOCTYPE html>/)
    expect(await readFile(out.junitPath!, 'utf8')).toMatch(/^<\?xml/)
  })

  it('junit: false writes none, a string writes there', async () => {
    expect((await writeReports(fixtureRunRecord(), join(dir, 'nojunit'), { junit: false })).junitPath).toBeUndefined()
    const custom = join(dir, 'ci', 'results', 'chiral.xml')
    expect((await writeReports(fixtureRunRecord(), join(dir, 'custom'), { junit: custom })).junitPath).toBe(custom)
    expect(await readFile(custom, 'utf8')).toContain('<testsuites')
  })
})

describe('rebuildReports', () => {
  it('re-renders report.html from report.json alone', async () => {
    const { htmlPath } = await writeReports(fixtureRunRecord(), join(dir, 'rebuild'))
    const original = await readFile(htmlPath, 'utf8')
    await writeFile(htmlPath, 'stale')
    await rebuildReports(join(dir, 'rebuild'))
    expect(await readFile(htmlPath, 'utf8')).toBe(original)
  })

  it('adds a baseline diff to report.json and the page', async () => {
    const target = join(dir, 'with-baseline')
    await writeReports(fixtureRunRecord(), target)
    const baseline = buildReport(fixtureRunRecord(), { generatedAt: '2020-01-01T00:00:00.000Z' })
    const { jsonPath, htmlPath } = await rebuildReports(target, { baseline })
    expect((await readReport(jsonPath)).baseline).toMatchObject({ regressions: 0, baseline: { generatedAt: '2020-01-01T00:00:00.000Z' } })
    expect(await readFile(htmlPath, 'utf8')).toContain('id="baseline"')
  })

  it('rejects an invalid report.json with the file and the field in the message', async () => {
    const target = join(dir, 'broken')
    const { jsonPath } = await writeReports(fixtureRunRecord(), target)
    const report = JSON.parse(await readFile(jsonPath, 'utf8'))
    report.kpis.connectionSuccessRate.value = 'ninety'
    await writeFile(jsonPath, JSON.stringify(report))
    const error = await rebuildReports(target).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ReportFileError)
    expect((error as Error).message).toContain(jsonPath)
    expect((error as Error).message).toContain('kpis.connectionSuccessRate.value')
  })

  it('rejects a file that is not JSON, naming it', async () => {
    const target = join(dir, 'garbage')
    await writeReports(fixtureRunRecord(), target)
    await writeFile(join(target, 'report.json'), '{ not json')
    await expect(rebuildReports(target)).rejects.toThrow(join(target, 'report.json'))
  })
})
