import { describe, expect, it } from 'vitest'
import type { NodeEventBody } from '../nodes/events.ts'
import { fixtureRunRecord, makeRun, makeScenario, T0, timeline } from './fixtures.ts'
import { EVENT_TABLE_LIMIT, toHtml } from './html.ts'
import { asymmetricPairs } from './html-matrix.ts'
import { eventFamily } from './html-timeline.ts'
import { buildReport } from './report-schema.ts'
import { sweepSeries } from './sweep.ts'

const fixtureHtml = toHtml(buildReport(fixtureRunRecord()))

describe('toHtml: one self-contained file', () => {
  it('references nothing outside itself and forbids fetching anything', () => {
    expect(fixtureHtml).toMatch(/^<!DOCTYPE html>/)
    expect(fixtureHtml).toContain('http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;')
    expect(fixtureHtml).not.toMatch(/\b(src|href)="(?!#)/)
    expect(fixtureHtml).not.toMatch(/@import|url\(|<link|<script|<iframe|<img/i)
  })

  it('puts failures before the KPIs and the scenarios, and opens failing scenarios only', () => {
    const failures = fixtureHtml.indexOf('id="failures"')
    expect(failures).toBeGreaterThan(0)
    expect(failures).toBeLessThan(fixtureHtml.indexOf('id="kpis"'))
    expect(fixtureHtml.indexOf('id="kpis"')).toBeLessThan(fixtureHtml.indexOf('id="scenarios"'))
    const opened = [...fixtureHtml.matchAll(/<details class="scenario[^"]*" id="[^"]+" data-scenario="([^"]+)" open>/g)].map(m => m[1])
    expect(opened).toEqual(['plan-3-bidirectional-discovery', 'docker-smoke', 'fault-bypass-check'])
  })

  it('escapes every piece of recorded text', () => {
    const evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    const record = makeRun([makeScenario(evil, {
      status: 'failed', description: evil, reason: evil,
      assertions: [{ id: evil, description: evil, expected: evil, actual: evil, passed: false, at: T0 }],
      events: timeline(T0, [[1, evil, { type: 'log', level: 'error', message: evil }]]),
      matrix: { peers: [evil, 'b'], at: T0, cells: [{ from: evil, to: 'b', inRoutingTable: true, discovered: true, foundByLookup: null, dialable: null, sees: true }],
        asymmetries: [{ sees: evil, unseen: 'b', cause: 'unknown', explanation: evil, evidence: [evil] }] }
    })], { id: evil, argv: [evil] })
    const page = toHtml(buildReport(record))
    expect(page).not.toContain('<script')
    expect(page).not.toContain('<img')
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;')
  })

  it('caps the event table and says so, while the timeline keeps every event', () => {
    const rows = Array.from({ length: 1_200 }, (_, i): readonly [number, string, NodeEventBody] =>
      [i * 10, i % 2 === 0 ? 'peerA' : 'peerB', { type: 'log', level: 'info', message: `tick ${i}` }])
    const page = toHtml(buildReport(makeRun([makeScenario('busy', { endedAt: T0 + 12_000, events: timeline(T0, rows) })])))
    expect(page.match(/<tr class="ev">/g)).toHaveLength(EVENT_TABLE_LIMIT)
    expect(page).toContain(`Showing the first ${EVENT_TABLE_LIMIT} of 1200 events`)
    expect(page.match(/<rect class="mark fam-node"/g)).toHaveLength(1_200)
  })

  it('shows every KPI, "not measured" when it has no samples', () => {
    const empty = toHtml(buildReport(makeRun([makeScenario('skipped', { status: 'skipped', reason: 'no docker' })])))
    for (const id of ['connectionSuccessRate', 'timeToFailureDetectionMs', 'bootstrapAvailability', 'discoverySuccessRate', 'autoRecoveryRate']) {
      expect(empty).toContain(`id="kpi-${id}"`)
    }
    expect(empty.match(/<span class="value">not measured<\/span>/g)).toHaveLength(5)
    expect(empty).toContain('No failed, errored or invalid scenario')
  })

  it('marks the sweep knee', () => {
    expect(fixtureHtml).toContain('knee: connection 80 % at latencyMs = 400')
    expect(fixtureHtml).toContain('knee: discovery 90 % at latencyMs = 400')
  })
})

describe('sweepSeries', () => {
  const point = (parameter: string, value: number, connection: number | null, discovery: number | null = 100) =>
    ({ parameter, value, connectionSuccessRate: connection, discoverySuccessRate: discovery, samples: 10 })

  it('finds the first value (ascending) where a KPI is no longer on target, per parameter', () => {
    const series = sweepSeries([point('latencyMs', 400, 80), point('latencyMs', 0, 100), point('latencyMs', 200, 95), point('lossPct', 5, 99, 99)])
    expect(series.map(s => s.parameter)).toEqual(['latencyMs', 'lossPct'])
    expect(series[0]!.points.map(p => p.value)).toEqual([0, 200, 400])
    // 95 % does not meet "> 95 %": 200 is the knee, not 400.
    expect(series[0]!.knees).toEqual([{ kpi: 'connectionSuccessRate', value: 200, kpiValue: 95 }])
    expect(series[1]!.knees).toEqual([{ kpi: 'discoverySuccessRate', value: 5, kpiValue: 99 }])
  })

  it('has no knee when every point meets its target, and skips unmeasured points', () => {
    expect(sweepSeries([point('x', 1, 100), point('x', 2, null, null)])[0]!.knees).toEqual([])
  })
})

describe('matrix and timeline helpers', () => {
  it('finds asymmetric pairs from the cells, both directions', () => {
    const matrix = fixtureRunRecord().scenarios.find(s => s.matrix !== undefined)!.matrix!
    expect([...asymmetricPairs(matrix)].map(k => JSON.parse(k))).toEqual([['peerA', 'peerB'], ['peerB', 'peerA']])
  })

  it('colours events by family', () => {
    expect(eventFamily('connect:result')).toBe('connect')
    expect(eventFamily('dial:failed')).toBe('connect')
    expect(eventFamily('monitor:started')).toBe('health')
    expect(eventFamily('routing:add')).toBe('discovery')
    expect(eventFamily('file:downloaded')).toBe('file')
    expect(eventFamily('log')).toBe('node')
  })
})
