import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { NodeEvent, NodeEventBody } from '../nodes/events.ts'
import { fixtureRunRecord, healthCheck, makeRun, makeScenario, T0, timeline } from './fixtures.ts'
import { EVENT_TABLE_LIMIT, toHtml } from './html.ts'
import { FILTER_SCRIPT, FILTER_SCRIPT_HASH } from './html-filter.ts'
import { NODE_EVENT_LIMIT } from './html-nodes.ts'
import { asymmetricPairs } from './html-matrix.ts'
import { eventFamily, healthStatusOf } from './events.ts'
import { buildReport } from './build-report.ts'
import { sweepSeries } from './sweep.ts'

const fixtureHtml = toHtml(buildReport(fixtureRunRecord()))

describe('toHtml: one self-contained file', () => {
  it('references nothing outside itself and forbids fetching anything', () => {
    expect(fixtureHtml).toMatch(/^<!DOCTYPE html>/)
    expect(fixtureHtml).toContain('http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;')
    expect(fixtureHtml).not.toMatch(/\b(src|href)="(?!#)/)
    expect(fixtureHtml).not.toMatch(/@import|url\(|<link|<iframe|<img/i)
  })

  it('has one inline script, the filters, allowed by its hash and by nothing else', () => {
    expect(fixtureHtml.match(/<script\b[^>]*>/g)).toEqual(['<script>'])
    expect(fixtureHtml).toContain(`<script>${FILTER_SCRIPT}</script>`)
    const csp = /Content-Security-Policy" content="([^"]+)"/.exec(fixtureHtml)![1]!.replaceAll('&#39;', "'")
    expect(csp).toContain(`script-src ${FILTER_SCRIPT_HASH}`)
    expect(csp).not.toMatch(/unsafe-inline'[^;]*;?\s*script|script-src[^;]*unsafe/)
    expect(FILTER_SCRIPT_HASH).toBe(`'sha256-${createHash('sha256').update(FILTER_SCRIPT).digest('base64')}'`)
  })

  it('puts failures before the KPIs and the scenarios, and opens failing scenarios only', () => {
    const failures = fixtureHtml.indexOf('id="failures"')
    expect(failures).toBeGreaterThan(0)
    expect(failures).toBeLessThan(fixtureHtml.indexOf('id="kpis"'))
    expect(fixtureHtml.indexOf('id="kpis"')).toBeLessThan(fixtureHtml.indexOf('id="scenarios"'))
    const opened = [...fixtureHtml.matchAll(/<details class="scenario[^"]*" id="[^"]+" data-scenario="([^"]+)" open\s/g)].map(m => m[1])
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
    expect(page.match(/<script/g)).toHaveLength(1)
    expect(page).not.toContain('<img')
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;')
  })

  it('caps the key-event table and each node\'s stream and says so, while the timeline counts every event', () => {
    const rows = Array.from({ length: 1_200 }, (_, i): readonly [number, string, NodeEventBody] =>
      [i * 10, i % 2 === 0 ? 'peerA' : 'peerB', { type: 'log', level: 'warn', message: `tick ${i}` }])
    const page = toHtml(buildReport(makeRun([makeScenario('busy', { endedAt: T0 + 12_000, events: timeline(T0, rows) })])))
    const keyTable = /<table class="events"><thead>.*?<\/table>/s.exec(page)![0]
    expect(keyTable.match(/<tr class="ev">/g)).toHaveLength(EVENT_TABLE_LIMIT)
    expect(page).toContain(`Showing the first ${EVENT_TABLE_LIMIT} of 1200 key events`)
    expect(page.match(/<tr class="ev">/g)).toHaveLength(EVENT_TABLE_LIMIT + 2 * NODE_EVENT_LIMIT)
    expect(page).toContain(`Showing the first ${NODE_EVENT_LIMIT} of 600 events`)
    // Marks closer than their width are one mark that counts its events: none is lost, the page stays bounded.
    const marks = [...page.matchAll(/<rect class="mark fam-node"(?: data-n="(\d+)")?/g)]
    expect(marks.length).toBeLessThan(1_200)
    expect(marks.reduce((sum, m) => sum + Number(m[1] ?? 1), 0)).toBe(1_200)
  })

  it('shows node names in place of peer IDs, and every peer ID in the nodes table', () => {
    const plan1 = /<details class="scenario[^"]*" id="[^"]+" data-scenario="plan-1-normal-connection".*?<\/details>\s*(?=<details class="scenario|<\/section>)/s.exec(fixtureHtml)![0]
    expect(plan1).toContain('peerId=peerA, source=dht')
    expect(plan1).toContain('provider=peerA, success=true')
    const nodesTable = /<table class="nodes">.*?<\/table>/s.exec(plan1)![0]
    for (const id of ['12D3KooWBoot', '12D3KooWpeerA', '12D3KooWpeerB']) expect(nodesTable).toContain(id)
    // Outside the legend, the node pages' headers and the search index, a peer ID appears only as a hover title.
    const elsewhere = plan1.replace(nodesTable, '').replace(/<summary><b>.*?<\/summary>/g, '').replace(/data-search="[^"]*"/g, '').replace(/title="[^"]*"/g, '')
    expect(elsewhere).not.toMatch(/12D3KooW(peerA|peerB)\b/)
  })

  it('links a step\'s targets that are nodes, and leaves link names as text', () => {
    const page = toHtml(buildReport(makeRun([makeScenario('links', {
      steps: [{ index: 0, kind: 'fault', label: 'down B->A', startedAt: T0, endedAt: T0 + 1, ok: true, targets: ['peerA', 'peerA->boot'] }]
    })])))
    expect(page).toContain('<a class="node-link" href="#s0-node-peerA" title="12D3KooWpeerA">peerA</a>, peerA-&gt;boot</td>')
  })

  it('times inside a scenario are plan time, and the page says so', () => {
    const s = buildReport(fixtureRunRecord()).scenarios.find(x => x.name === 'plan-4-health-monitoring')!
    // The peers turned red 5.1 s (real) after the start at timeScale 0.1: 51 s of plan time.
    expect(fixtureHtml).toContain('+51.000s')
    expect(fixtureHtml).toContain('times are plan time: real time × 10 (timeScale 0.1')
    expect(s.timeScale).toBe(0.1)
  })

  it('an outage\'s downtime, a real-ms payload, also reads in plan time', () => {
    const s = makeScenario('flap', {
      timeScale: 0.1,
      events: [{ seq: 0, time: T0 + 4_000, node: 'peerA', type: 'health:recovered', address: '/ip4/127.0.0.1/tcp/1', downtimeMs: 2_000 } as NodeEvent]
    })
    const page = toHtml(buildReport(makeRun([s])))
    // 2 s of the run at timeScale 0.1 is 20 s of the plan, like every other time on the page.
    expect(page).toContain('downtimeMs=2000 (plan 20.0s)')
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

  it('colours health marks by the status they report, not by their kind', () => {
    const at = (body: NodeEventBody): NodeEvent => ({ seq: 0, time: T0, node: 'peerA', ...body }) as NodeEvent
    expect(healthStatusOf(at(healthCheck(false, null, T0)))).toBe('red')
    expect(healthStatusOf(at(healthCheck(true, 300, T0)))).toBe('yellow')
    expect(healthStatusOf(at(healthCheck(true, 10, T0)))).toBe('green')
    expect(healthStatusOf(at({ type: 'health:status', from: 'green', to: 'red', address: '/x' }))).toBe('red')
    expect(healthStatusOf(at({ type: 'supervisor:check', ok: false, failed: ['port: refused'], latencyMs: null }))).toBe('red')
    expect(healthStatusOf(at({ type: 'routing:add', peerId: 'x', size: 1 }))).toBeUndefined()
  })

  it('shows every matrix step, a failing earlier one included, and pairs blind both ways', () => {
    const cells = (sees: boolean): Array<{ from: string, to: string, inRoutingTable: boolean, discovered: boolean, foundByLookup: null, dialable: null, sees: boolean }> =>
      [['A', 'B'], ['B', 'A']].map(([from, to]) => ({ from: from!, to: to!, inRoutingTable: sees, discovered: sees, foundByLookup: null, dialable: null, sees }))
    const blindMatrix = {
      peers: ['A', 'B'], at: T0 + 100, cells: cells(false), asymmetries: [],
      blind: [{ peers: ['A', 'B'] as [string, string], bootstrap: 'ext', cause: 'empty-answers' as const, explanation: 'ext answered with no peers', evidence: ['A\'s FIND_NODE for B via ext now: 0 peers'] }]
    }
    const healed = { peers: ['A', 'B'], at: T0 + 900, cells: cells(true), asymmetries: [], blind: [] }
    const page = toHtml(buildReport(makeRun([makeScenario('two-matrices', {
      status: 'failed', matrix: healed,
      matrices: [{ step: 3, label: 'before', passed: false, matrix: blindMatrix }, { step: 5, passed: true, matrix: healed }]
    })])))
    expect(page).toContain('Who sees whom — step 3 (before): NOT as expected')
    expect(page).toContain('Who sees whom — step 5: as expected')
    expect(page).toMatch(/A and B see neither each other, though both joined through ext/)
    expect(page).toContain('ext answered with no peers')
    expect(page).toMatch(/<td class="unseen  blind"/)
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
