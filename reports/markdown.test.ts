import { describe, expect, it } from 'vitest'
import { fixtureRunRecord, makeRun, makeScenario, T0, timeline } from './fixtures.ts'
import { interopMatrix, markdownCell, markdownSummary, markdownTable } from './markdown.ts'
import { buildReport } from './build-report.ts'

const fixture = buildReport(fixtureRunRecord())

describe('markdownSummary', () => {
  const md = markdownSummary(fixture)

  it('puts the failures first, each with its step, cause and failing assertions, then the KPI table', () => {
    expect(md.split('\n')[0]).toBe('## chiral-sim: ✘ 3 scenarios of 8 did not pass')
    const failures = md.indexOf('### Failures')
    expect(failures).toBeGreaterThan(0)
    expect(failures).toBeLessThan(md.indexOf('### KPIs'))
    const plan3 = md.slice(md.indexOf('`plan-3-bidirectional-discovery`'), md.indexOf('####', md.indexOf('`plan-3-bidirectional-discovery`')))
    expect(plan3).toContain('**Step 4** (waitForBidirectionalDiscovery: peerA and peerB see each other) at +31.000s plan time on peerA, peerB: timed out after 15000 ms')
    expect(plan3).toContain('**Cause:** peerB sees peerA but not the reverse — `one-way-fault`')
    expect(plan3).toContain('| bidirectional-peerA-sees-peerB | peerB in peerA\'s discovered peers within 15s | missing after 15.0s: routing table \\<boot\\> only & "no dial" |')
    // Invalid and errored scenarios are failures too; passing ones are not listed there.
    expect(md.slice(failures, md.indexOf('### KPIs'))).toContain('`fault-bypass-check`')
    expect(md.slice(failures, md.indexOf('### KPIs'))).not.toContain('plan-1-normal-connection')
    for (const id of Object.keys(fixture.kpis)) expect(md).toContain(`| ${fixture.kpis[id as keyof typeof fixture.kpis].name} |`)
    expect(md).toContain('| Connection success rate | 90 % | \\> 95 % | 70 % | 10 | ✘ not met |')
  })

  it('says so in its first line when everything passed', () => {
    const green = markdownSummary(buildReport(makeRun([makeScenario('ok', { assertions: [{ id: 'a', description: 'a', expected: '1', actual: '1', passed: true, at: T0 }] })])))
    expect(green.split('\n')[0]).toBe('## chiral-sim: ✔ 1 of 1 scenario passed')
    expect(green).not.toContain('### Failures')
  })

  it('escapes recorded text: it cannot break a table, inject HTML or a link', () => {
    expect(markdownCell('a|b\nc <script>x</script> [l](http://e) *e* `c`')).toBe('a\\|b c \\<script\\>x\\</script\\> \\[l\\](http://e) \\*e\\* \\`c\\`')
    const table = markdownTable(['h1', 'h2'], [['x|y', 'z']])
    expect(table.split('\n')).toEqual(['| h1 | h2 |', '| --- | --- |', '| x\\|y | z |'])
    const evil = '<img src=x onerror=alert(1)>|'
    const out = markdownSummary(buildReport(makeRun([makeScenario(evil, { status: 'failed', reason: evil, assertions: [{ id: evil, description: evil, expected: evil, actual: evil, passed: false, at: T0 }] })])))
    // Code spans (the scenario's name in a heading) show their text literally; anywhere else it is escaped.
    expect(out.replace(/`[^`\n]*`/g, '')).not.toMatch(/(^|[^\\])<img/m)
    expect(out).toContain('\\<img src=x onerror=alert(1)\\>\\|')
  })

  it('draws the interop matrix from what external nodes said about themselves, and none without them', () => {
    expect(interopMatrix(fixture)).toBeUndefined()
    expect(md).not.toContain('Interop matrix')
    const probe = (agentVersion: string) => timeline(T0, [[10, 'ext', { type: 'external:probe', ok: true, latencyMs: 1, detail: 'pong', agentVersion, protocols: ['/ipfs/kad/1.0.0'], dhtProtocol: '/ipfs/kad/1.0.0', speaksDht: true }]])
    const pass = { id: 'a', description: 'a', expected: '1', actual: '1', passed: true, at: T0 }
    const report = buildReport(makeRun([
      makeScenario('rust-tcp', { mode: 'tcp', events: probe('rust-libp2p/0.54.1'), assertions: [pass] }),
      makeScenario('go-tcp', { mode: 'tcp', status: 'failed', events: probe('go-libp2p/0.49'), assertions: [pass, { ...pass, id: 'b', passed: false }] }),
      makeScenario('rust-docker', { mode: 'docker', events: probe('rust-libp2p/0.54.1'), assertions: [pass] })
    ]))
    expect(interopMatrix(report)!.markdown.split('\n')).toEqual([
      '| implementation (agent version) | docker | tcp |',
      '| --- | --- | --- |',
      '| rust-libp2p/0.54.1 | ✔ 1/1 | ✔ 1/1 |',
      '| go-libp2p/0.49 | — | ✘ go-tcp failed (1/2) |'
    ])
    expect(markdownSummary(report, { sections: [{ title: 'Extra', markdown: 'extra body' }] })).toMatch(/### Interop matrix[^]*### Extra\n\nextra body/)
  })
})
