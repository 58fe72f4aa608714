import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium, type Browser, type Locator, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NodeEventBody } from '../nodes/events.ts'
import { fixtureRunRecord, makeRun, makeScenario, T0, timeline } from './fixtures.ts'
import { toHtml } from './html.ts'
import { toJUnitXml } from './junit.ts'
import { KPI_IDS } from './kpis.ts'
import { buildReport } from './build-report.ts'
import { type Report } from './report-schema.ts'

/**
 * report.html as people see it: rendered by a real browser. A string test cannot tell whether the failing
 * assertion is actually visible, whether the page throws, or whether it reaches for the network.
 */

// Debian's package by default; CHROMIUM_PATH points elsewhere on other systems.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
const present = existsSync(CHROMIUM)
// In CI a missing browser must turn the build red: a silently skipped check is no check.
const required = process.env.CI === 'true'
const missing = `${CHROMIUM} not found (install Debian's chromium package to run the report's browser checks)`

interface Rendered { page: Page, problems: string[], requests: string[] }

let browser: Browser
let dir: string
const fixtureReport = buildReport(fixtureRunRecord())

async function render (name: string, markup: string, options: { javaScriptEnabled?: boolean } = {}): Promise<Rendered> {
  const file = join(dir, `${name}.html`)
  await writeFile(file, markup)
  const url = pathToFileURL(file).href
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, ...options })
  const problems: string[] = []
  const requests: string[] = []
  page.on('console', msg => { if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`console ${msg.type()}: ${msg.text()}`) })
  page.on('pageerror', err => { problems.push(`page error: ${err.message}`) })
  page.on('request', req => { if (req.url() !== url) requests.push(req.url()) })
  await page.goto(url, { waitUntil: 'load' })
  return { page, problems, requests }
}

/** Events drawn by timeline marks: a mark that stands for several events says how many (data-n). */
async function markedEvents (marks: Locator): Promise<number> {
  return await marks.evaluateAll(els => els.reduce((sum, el) => sum + Number(el.getAttribute('data-n') ?? 1), 0))
}

/** Rendered text, whitespace-collapsed as a reader sees it. */
const text = async (locator: Locator): Promise<string> => (await locator.innerText()).replace(/\s+/g, ' ').trim()

const renderReport = async (name: string, report: Report): Promise<Rendered> => await render(name, toHtml(report))

const title = `report.html in headless Chromium${present ? '' : ` — ${required ? 'required by CI=true' : 'skipped'}: ${missing}`}`

describe.skipIf(!present && !required)(title, () => {
  let fixture: Rendered

  beforeAll(async () => {
    if (!present) throw new Error(`${missing}; CI=true, so this fails instead of skipping`)
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS })
    dir = await mkdtemp(join(tmpdir(), 'chiral-html-'))
    fixture = await renderReport('fixture', fixtureReport)
  })

  afterAll(async () => {
    await browser?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('renders with no console error and no network request', async () => {
    expect(await text(fixture.page.locator('h1'))).toContain('run-fixture-0001')
    expect(fixture.problems).toEqual([])
    expect(fixture.requests).toEqual([])
  })

  it('the checks catch a page that fetches or violates the policy', async () => {
    // Port 9 (discard) on loopback: refused at once, nothing leaves the machine.
    const fetching = await render('fetching', '<!DOCTYPE html><img src="http://127.0.0.1:9/x.png">')
    expect(fetching.requests).toEqual(['http://127.0.0.1:9/x.png'])
    const csp = toHtml(fixtureReport).replace('</main>', '<img src="http://127.0.0.1:9/y.png"></main>')
    const blocked = await render('blocked', csp)
    expect(blocked.problems.join('\n')).toMatch(/Content Security Policy/)
  })

  it('shows the failed scenario\'s failing assertion, expected vs actual, without any click', async () => {
    const card = fixture.page.locator('#failures .failure-card[data-scenario="plan-3-bidirectional-discovery"]')
    const row = card.locator('table.assertions tr.fail')
    expect(await row.isVisible()).toBe(true)
    expect(await text(row.locator('td.expected'))).toBe('peerB in peerA\'s discovered peers within 15s')
    expect(await text(row.locator('td.actual'))).toBe('missing after 15.0s: routing table <boot> only & "no dial"')
    // The scenario's own section is open as well, so its assertion table is visible too.
    expect(await fixture.page.locator('details[data-scenario="plan-3-bidirectional-discovery"] table.assertions tr.fail').isVisible()).toBe(true)
    // Passing scenarios stay folded, so the failures are what one sees.
    expect(await fixture.page.locator('details[data-scenario="plan-1-normal-connection"] table.assertions').isVisible()).toBe(false)
    const top = async (selector: string): Promise<number> => (await fixture.page.locator(selector).boundingBox())!.y
    expect(await top('#failures')).toBeLessThan(await top('#kpis'))
  })

  it('marks the asymmetric pair in red and lists its diagnosis under the grid', async () => {
    const section = fixture.page.locator('details[data-scenario="plan-3-bidirectional-discovery"]')
    const matrix = section.locator('table.matrix')
    expect(await matrix.isVisible()).toBe(true)
    expect(await matrix.locator('td.asym').count()).toBe(2)
    const seen = matrix.locator('td[data-from="peerB"][data-to="peerA"]')
    const unseen = matrix.locator('td[data-from="peerA"][data-to="peerB"]')
    expect(await text(seen)).toBe('✔')
    expect(await text(unseen)).toBe('')
    for (const cell of [seen, unseen]) {
      expect(await cell.getAttribute('class')).toMatch(/\basym\b/)
      expect(await cell.getAttribute('title')).toContain('cause: one-way-fault')
      expect(await cell.evaluate(el => getComputedStyle(el).backgroundColor)).toBe('rgb(255, 206, 203)')
    }
    const diagnosis = section.locator('.asymmetries > li')
    expect(await diagnosis.isVisible()).toBe(true)
    expect(await text(diagnosis)).toContain('peerB sees peerA but peerA does not see peerB')
    expect(await text(diagnosis.locator('.cause'))).toBe('one-way-fault')
    expect(await text(diagnosis)).toContain('the fault on link peerA->peerB drops every packet')
  })

  it('shows every KPI with its gauge, target and sample count', async () => {
    for (const id of KPI_IDS) {
      const kpi = fixtureReport.kpis[id]
      const card = fixture.page.locator(`#kpis #kpi-${id}`)
      expect(await card.isVisible(), id).toBe(true)
      expect(await text(card.locator('h3'))).toBe(kpi.name)
      expect(await text(card)).toContain(`${kpi.samples} sample`)
      expect(await text(card)).toMatch(/target [<>]/)
      expect((await card.locator('svg.gauge').boundingBox())!.width).toBeGreaterThan(100)
    }
    expect(await text(fixture.page.locator('#kpi-connectionSuccessRate .value'))).toBe('90 %')
    expect(await text(fixture.page.locator('#kpi-timeToFailureDetectionMs .verdict'))).toBe('✔ met')
  })

  it('says "not measured" for KPIs without samples', async () => {
    const empty = await renderReport('empty', buildReport(makeRun([makeScenario('only-skipped', { status: 'skipped', reason: 'needs docker' })])))
    for (const id of KPI_IDS) {
      expect(await text(empty.page.locator(`#kpi-${id} .value`))).toBe('not measured')
      expect(await empty.page.locator(`#kpi-${id} .gauge-empty`).isVisible()).toBe(true)
    }
    expect(empty.problems).toEqual([])
  })

  it('draws the timeline, the sweep knee and the baseline comparison with regressions first', async () => {
    const sweep = fixture.page.locator('details[data-scenario="sweep-bootstrap-latency"]')
    await sweep.locator(':scope > summary').click()
    expect(await sweep.locator('svg.sweep .knee text').first().textContent()).toBe('knee: connection 80 % at latencyMs = 400')
    expect(await markedEvents(sweep.locator('svg.timeline rect.mark:not(.fam-fault)'))).toBe(12)
    expect(await sweep.locator('svg.timeline rect.mark.fam-fault').count()).toBe(2)

    const before = structuredClone(fixtureRunRecord())
    before.scenarios = before.scenarios.map(s => s.name === 'plan-3-bidirectional-discovery' ? { ...s, status: 'passed' } : s)
    const compared = await renderReport('baseline', buildReport(fixtureRunRecord(), { baseline: buildReport(before) }))
    const firstRow = compared.page.locator('#baseline table').nth(1).locator('tbody tr').first()
    expect(await firstRow.getAttribute('class')).toMatch(/regression/)
    expect(await text(firstRow)).toContain('plan-3-bidirectional-discovery')
    expect(compared.problems).toEqual([])
  })

  it('stays usable with a thousand events', async () => {
    const rows = Array.from({ length: 1_000 }, (_, i): readonly [number, string, NodeEventBody] =>
      [i * 20, `peer${i % 5}`, i % 3 === 0 ? { type: 'routing:add', peerId: `p${i}`, size: i } : { type: 'log', level: 'info', message: `tick ${i}` }])
    const busy = await renderReport('busy', buildReport(makeRun([makeScenario('busy', { status: 'failed', endedAt: T0 + 20_000, events: timeline(T0, rows) })])))
    expect(await markedEvents(busy.page.locator('svg.timeline rect.mark'))).toBe(1_000)
    expect(await busy.page.locator('table.events tr.ev').count()).toBe(1_000)
    const search = busy.page.locator('#filters input[name="q"]')
    await search.fill('tick 998')
    expect(await busy.page.locator('table.events tr.ev:visible').count()).toBe(1)
    expect(busy.problems).toEqual([])
  })

  describe('filters and search', () => {
    let page: Page
    const visibleScenarios = async (): Promise<string[]> =>
      await page.locator('details.scenario:visible').evaluateAll(els => els.map(el => el.getAttribute('data-scenario') ?? ''))
    const all = fixtureReport.scenarios.map(s => s.name)

    beforeAll(async () => {
      page = (await renderReport('filters', fixtureReport)).page
    })

    it('shows the toolbar once the script runs, with every scenario listed', async () => {
      expect(await page.locator('#filters').isVisible()).toBe(true)
      expect((await visibleScenarios()).sort()).toEqual([...all].sort())
      expect(await text(page.locator('#filters .filter-count'))).toBe(`${all.length} of ${all.length} scenarios shown`)
    })

    it('filters by outcome, tag and mode, and resets', async () => {
      await page.locator('#filters input[name="outcome"][value="passed"]').uncheck()
      expect((await visibleScenarios()).sort()).toEqual(fixtureReport.scenarios.filter(s => s.outcome !== 'passed').map(s => s.name).sort())
      // The failure cards follow the filters too.
      await page.locator('#filters input[name="outcome"][value="failed"]').uncheck()
      expect(await page.locator('#failures .failure-card[data-scenario="plan-3-bidirectional-discovery"]').isVisible()).toBe(false)
      expect(await page.locator('#failures .failure-card[data-scenario="docker-smoke"]').isVisible()).toBe(true)
      await page.locator('#filters button[name="reset"]').click()
      await page.locator('#filters select[name="tag"]').selectOption('sweep')
      expect(await visibleScenarios()).toEqual(['sweep-bootstrap-latency'])
      await page.locator('#filters select[name="tag"]').selectOption('')
      // A tag is matched whole, spaces and all (tags are free text).
      const spaced = await render('spaced-tag', toHtml(buildReport(makeRun([makeScenario('a', { tags: ['slow net', 'x'] }), makeScenario('b', { tags: ['slow'] })]))))
      await spaced.page.locator('#filters select[name="tag"]').selectOption('slow net')
      expect(await spaced.page.locator('details.scenario:visible').evaluateAll(els => els.map(el => el.getAttribute('data-scenario')))).toEqual(['a'])
      await spaced.page.locator('#filters select[name="tag"]').selectOption('slow')
      expect(await spaced.page.locator('details.scenario:visible').evaluateAll(els => els.map(el => el.getAttribute('data-scenario')))).toEqual(['b'])
      await page.locator('#filters select[name="mode"]').selectOption('docker')
      expect(await visibleScenarios()).toEqual(['docker-smoke'])
      expect(await text(page.locator('#filters .filter-count'))).toBe(`1 of ${all.length} scenarios shown`)
      await page.locator('#filters button[name="reset"]').click()
      expect((await visibleScenarios()).length).toBe(all.length)
    })

    it('searches an event type: only scenarios that recorded it, only its rows', async () => {
      await page.locator('#filters input[name="q"]').fill('dial:failed')
      expect(await visibleScenarios()).toEqual(['plan-3-bidirectional-discovery'])
      const section = page.locator('details[data-scenario="plan-3-bidirectional-discovery"]')
      const rows = section.locator('table.events:not(.node-events) tr.ev')
      expect(await rows.count()).toBeGreaterThan(1)
      const shown = rows.filter({ visible: true })
      expect(await shown.count()).toBe(1)
      expect(await text(shown.first())).toContain('dial:failed')
      expect(await text(shown.first())).toContain('peerId=peerB')
      expect(await text(section.locator('.match-note').first())).toMatch(/^1 of \d+ events match "dial:failed"$/)
      await page.locator('#filters button[name="reset"]').click()
      expect(await rows.filter({ visible: true }).count()).toBe(await rows.count())
    })

    it('searches a node name or a peer ID: the scenarios it is in, and its rows', async () => {
      await page.locator('#filters input[name="q"]').fill('peerB')
      const withPeerB = fixtureReport.scenarios.filter(s => s.nodes.some(n => n.name === 'peerB')).map(s => s.name)
      expect((await visibleScenarios()).sort()).toEqual([...withPeerB].sort())
      // A peer ID finds the same scenarios, and in the key-event table the rows of that node, shown by name.
      await page.locator('#filters input[name="q"]').fill('12D3KooWpeerB')
      expect((await visibleScenarios()).sort()).toEqual([...withPeerB].sort())
      // The search opens the passing scenario and the table where it found rows.
      const plan1 = page.locator('details[data-scenario="plan-1-normal-connection"]')
      expect(await plan1.getAttribute('open')).not.toBeNull()
      const shown = plan1.locator('table.events:not(.node-events) tr.ev').filter({ visible: true })
      expect(await shown.count()).toBeGreaterThan(0)
      for (const row of await shown.all()) expect(await text(row.locator('td').nth(1))).toBe('peerB')
      await page.locator('#filters input[name="q"]').fill('no-such-thing')
      expect(await visibleScenarios()).toEqual([])
      expect(await text(page.locator('#filters .filter-count'))).toBe(`0 of ${all.length} scenarios shown`)
      await page.locator('#filters button[name="reset"]').click()
    })
  })

  it('with scripts off: no toolbar, every scenario there, failures open', async () => {
    const off = await render('no-script', toHtml(fixtureReport), { javaScriptEnabled: false })
    expect(await off.page.locator('#filters').isVisible()).toBe(false)
    expect(await off.page.locator('details.scenario').count()).toBe(fixtureReport.scenarios.length)
    expect(await off.page.locator('details[data-scenario="plan-3-bidirectional-discovery"] table.assertions tr.fail').isVisible()).toBe(true)
    expect(off.problems).toEqual([])
  })

  it('draws a red health check red and a green one green, with labelled lanes', async () => {
    const section = fixture.page.locator('details[data-scenario="plan-4-health-monitoring"]')
    await section.locator(':scope > summary').click()
    const svg = section.locator('svg.timeline')
    const fill = async (status: string): Promise<string[]> =>
      await svg.locator(`rect.mark.health[data-status="${status}"]`).evaluateAll(els => els.map(el => getComputedStyle(el).fill))
    const red = await fill('red')
    expect(red.length).toBeGreaterThan(0)
    for (const f of red) expect(f).toBe('rgb(207, 34, 46)')
    const green = await fill('green')
    expect(green.length).toBeGreaterThan(0)
    for (const f of green) expect(f).toBe('rgb(26, 127, 55)')
    // Red checks are painted last, so a red one is never hidden under a green one at the same spot.
    const order = await svg.locator('rect.mark.health').evaluateAll(els => els.map(el => el.getAttribute('data-status')))
    expect(order.lastIndexOf('green')).toBeLessThan(order.indexOf('red'))
    expect(await svg.locator('text.lane-label').allTextContents()).toEqual(['boot', 'peerA', 'peerB'])
    const labels = await svg.locator('text.mark-label').allTextContents()
    expect(labels).toContain('health red')
    expect(labels).toContain('stopped')
    expect(await svg.locator('text.tick-label').first().textContent()).toBe('0 s')
    // Every step's number is written on the timeline, steps too close to tell apart as one range ("0–2").
    const numbered = (await svg.locator('text.step-number').allTextContents()).flatMap(t => {
      const range = /^(\d+)–(\d+)$/.exec(t)
      return range !== null ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i) : t.split(',').map(Number)
    })
    expect(numbered).toEqual([0, 1, 2, 3])
    expect(await text(section.locator('.time-base'))).toContain('plan time: real time × 10')
  })

  it('a node name leads to the node: its output tail and its own event stream', async () => {
    const section = fixture.page.locator('details[data-scenario="docker-smoke"]')
    await section.locator('table.nodes a.node-link', { hasText: 'boot' }).click()
    const node = section.locator('details.node[data-node="boot"]')
    // The page opens the target on 'hashchange', which follows the click by a task: wait for it, with a deadline.
    await node.locator('pre.output').waitFor({ state: 'visible', timeout: 5_000 })
    expect(await node.getAttribute('open')).not.toBeNull()
    expect(await text(node.locator('pre.output'))).toBe('chiral-node: node "boot" could not start: listen EADDRINUSE 0.0.0.0:4001 <in use>')
    const plan3 = fixture.page.locator('details[data-scenario="plan-3-bidirectional-discovery"]')
    await plan3.locator('details.events > summary').click()
    await plan3.locator('table.events:not(.node-events) a.node-link', { hasText: 'peerA' }).first().click()
    const peerA = plan3.locator('details.node[data-node="peerA"]')
    await peerA.locator('table.node-events').waitFor({ state: 'visible', timeout: 5_000 })
    expect(await peerA.getAttribute('open')).not.toBeNull()
    expect(await peerA.locator('table.node-events tr.ev').count()).toBe(fixtureReport.scenarios.find(s => s.name === 'plan-3-bidirectional-discovery')!.events.filter(e => e.node === 'peerA').length)
    expect(await peerA.locator('table.node-events').isVisible()).toBe(true)
  })

  it('the JUnit file parses as XML in the browser', async () => {
    const parsed = await fixture.page.evaluate(xml => {
      const doc = new DOMParser().parseFromString(xml, 'application/xml')
      return [doc.getElementsByTagName('parsererror').length, doc.getElementsByTagName('testcase').length]
    }, toJUnitXml(fixtureReport))
    expect(parsed).toEqual([0, fixtureReport.scenarios.length])
  })
})
