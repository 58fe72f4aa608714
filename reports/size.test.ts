import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import type { NodeEventBody } from '../nodes/events.ts'
import { healthCheck, makeRun, makeScenario, T0, timeline } from './fixtures.ts'
import { toHtml } from './html.ts'
import { buildReport } from './build-report.ts'
import { ReportSchema } from './report-schema.ts'

/**
 * How big report.html gets. A CI artifact someone opens in a browser must stay quick to load and to search.
 *
 * Measured on the built-in suite (22 scenarios, memory mode, seed 7; its report.json is the gzipped fixture next to
 * this file): report.html was 1,222,029 bytes before the filters, node pages and labelled timeline (issue 14), and
 * is about 1.30 MB with them (1,299,816). The limit below leaves room for growth without letting the page double
 * again.
 */
export const SUITE_REPORT_HTML_LIMIT = 1.5 * 1024 * 1024

/** A scenario's share of the page is bounded whatever its node logs: tables are capped, close timeline marks merge. */
export const BUSY_SCENARIO_HTML_LIMIT = 1.5 * 1024 * 1024

describe('report.html size', () => {
  it(`stays under ${SUITE_REPORT_HTML_LIMIT} bytes for the built-in suite`, () => {
    const report = ReportSchema.parse(JSON.parse(gunzipSync(readFileSync(new URL('./suite-report.fixture.json.gz', import.meta.url))).toString('utf8')))
    expect(report.scenarios.length).toBe(22)
    const size = Buffer.byteLength(toHtml(report))
    expect(size).toBeGreaterThan(500_000)
    expect(size).toBeLessThan(SUITE_REPORT_HTML_LIMIT)
  })

  it('stays bounded for a scenario with 20 000 events', () => {
    const rows = Array.from({ length: 20_000 }, (_, i): readonly [number, string, NodeEventBody] =>
      [i * 3, `peer${i % 8}`, i % 4 === 0 ? healthCheck(i % 8 !== 0, 20, T0 + i * 3) : i % 4 === 1 ? { type: 'routing:add', peerId: `12D3KooWx${i}`, size: i % 50 } : { type: 'log', level: i % 100 === 2 ? 'warn' : 'info', message: `tick ${i}` }])
    const report = buildReport(makeRun([makeScenario('busy', { status: 'failed', endedAt: T0 + 60_000, events: timeline(T0, rows) })]))
    expect(Buffer.byteLength(toHtml(report))).toBeLessThan(BUSY_SCENARIO_HTML_LIMIT)
  })
})
