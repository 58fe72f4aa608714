import type { Cell, InteropMatrix } from './matrix.ts'

/**
 * The interop matrix as a table: markdown (a CI step summary, the README) and a self-contained HTML page. Rows are
 * bootstrap implementation × configuration, columns the tests; one table per peer implementation that ran.
 */

type Mark = { symbol: string, text: string, tone: 'ok' | 'bad' | 'none' }

export function cellMark (c: Cell): Mark {
  switch (c.status) {
    case 'not-applicable': return { symbol: '—', text: 'no such knob', tone: 'none' }
    case 'not-available': return { symbol: '·', text: 'not available', tone: 'none' }
    case 'skipped': return { symbol: '⏭', text: 'skipped', tone: 'none' }
    case 'incomplete': return { symbol: '◐', text: 'not checkable', tone: 'none' }
    case 'passed': return c.asExpected === true ? { symbol: '✅', text: 'pass', tone: 'ok' } : { symbol: '❌', text: 'false pass', tone: 'bad' }
    case 'failed': case 'error':
      return c.asExpected === true ? { symbol: '✅', text: 'fails', tone: 'ok' } : { symbol: '❌', text: c.status === 'error' ? 'error' : 'fail', tone: 'bad' }
  }
}

export interface MatrixSummary { run: number, asExpected: number, unexpected: number, falsePasses: number, notRun: number, incomplete: number }

export function summarizeMatrix (m: InteropMatrix): MatrixSummary {
  const ran = m.cells.filter(c => c.asExpected != null)
  return {
    run: ran.length,
    asExpected: ran.filter(c => c.asExpected === true).length,
    unexpected: ran.filter(c => c.asExpected === false).length,
    falsePasses: ran.filter(c => c.asExpected === false && c.status === 'passed').length,
    notRun: m.cells.length - ran.length,
    incomplete: m.cells.filter(c => c.status === 'incomplete').length
  }
}

interface Table { peer: string, tests: string[], rows: Array<{ label: string, cells: Array<Cell | undefined> }> }

function tables (m: InteropMatrix): Table[] {
  const peers = [...new Set(m.cells.map(c => c.peer))].filter(p => m.cells.some(c => c.peer === p && c.status !== 'not-available'))
  const tests = [...new Set(m.cells.map(c => c.test))]
  return peers.map(peer => {
    const mine = m.cells.filter(c => c.peer === peer)
    const rowKeys = [...new Set(mine.map(c => `${c.bootstrap}\u0000${c.config}`))]
    const rows = rowKeys.map(key => {
      const [bootstrap, config] = key.split('\u0000') as [string, string]
      const of = mine.filter(c => c.bootstrap === bootstrap && c.config === config)
      return { label: `${bootstrap} / ${config}`, cells: tests.map(t => of.find(c => c.test === t)) }
    }).filter(r => r.cells.some(c => c != null && c.status !== 'not-applicable'))
    return { peer, tests, rows }
  })
}

const oneLine = (s: string, max = 240): string => {
  const flat = s.replace(/\s+/g, ' ').trim()
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

export function summaryText (m: InteropMatrix): string {
  const s = summarizeMatrix(m)
  return `${s.run} cells run: ${s.asExpected} as a correct harness concludes, ${s.unexpected} not (${s.falsePasses} false passes)` +
    (s.notRun > 0 ? `, ${s.notRun} not run` : '') + (s.incomplete > 0 ? ` (${s.incomplete} of them ran but a peer could not make one of their checks)` : '')
}

const raced = (c: Cell): string => (c.racedPeers ?? []).length > 0 ? ` (kad-dht of ${c.racedPeers!.join(', ')} never admitted the bootstrap)` : ''

export function matrixMarkdown (m: InteropMatrix): string {
  const md = (s: string): string => s.replace(/\|/g, '\\|')
  const out: string[] = [`### Interop matrix (${m.mode} mode, seed ${m.seed})`, '', summaryText(m), '']
  for (const t of tables(m)) {
    out.push(`**Peers: ${t.peer}**`, '', `| bootstrap / config | ${t.tests.join(' | ')} |`, `|---|${t.tests.map(() => ':-:').join('|')}|`)
    for (const r of t.rows) out.push(`| ${r.label} | ${r.cells.map(c => c == null ? '' : `${cellMark(c).symbol} ${cellMark(c).text}`).join(' | ')} |`)
    out.push('')
  }
  out.push('✅ pass / ✅ fails: what a correct harness concludes (the configuration breaks discovery, and the test says so). ' +
    '❌ fail: the bootstrap is usable but the test failed. ❌ false pass: the test passed where discovery cannot work. — the implementation has no such knob. ' +
    '◐ not checkable: the peer does not implement a command the test needs (listed below).', '')
  const unexpected = m.cells.filter(c => c.asExpected === false)
  if (unexpected.length > 0) {
    out.push('**Not as expected**', '')
    for (const c of unexpected) out.push(`- ${c.bootstrap} / ${c.config} / ${c.test} (peers ${c.peer}), ${c.status}: ${md(oneLine(c.detail ?? ''))}${raced(c)}`)
    out.push('')
  }
  const incomplete = m.cells.filter(c => c.status === 'incomplete')
  if (incomplete.length > 0) {
    out.push('**Checks a peer could not make** (◐: no verdict, neither pass nor fail)', '')
    for (const c of incomplete) out.push(`- ${c.bootstrap} / ${c.config} / ${c.test} (peers ${c.peer}), ${c.assertions?.passed ?? 0}/${c.assertions?.total ?? 0} checks held before: ${md(oneLine((c.uncheckable ?? []).join('; ')))}`)
    out.push('')
  }
  const evidence = m.cells.filter(c => c.asExpected === true && c.status !== 'passed')
  if (evidence.length > 0) {
    out.push('<details><summary>How the expected failures failed</summary>', '')
    for (const c of evidence) out.push(`- ${c.bootstrap} / ${c.config} / ${c.test}: ${md(oneLine(c.detail ?? ''))}${raced(c)}`)
    out.push('', '</details>', '')
  }
  out.push('Configurations:', '')
  for (const [k, v] of Object.entries(m.configs)) out.push(`- \`${k}\`: ${v}`)
  out.push('', 'Implementations:', '')
  for (const [k, v] of Object.entries(m.versions)) out.push(`- ${k}: ${v}`)
  for (const [k, v] of Object.entries(m.peersUnavailable)) out.push(`- peers ${k}: ${v}`)
  return `${out.join('\n')}\n`
}

const esc = (s: string): string => s.replace(/[&<>"']/g, ch => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!)

export function matrixHtml (m: InteropMatrix): string {
  const body: string[] = [`<h1>Interop matrix</h1><p>${esc(m.mode)} mode, seed ${m.seed}, ${esc(m.generatedAt)}. ${esc(summaryText(m))}.</p>`]
  for (const t of tables(m)) {
    body.push(`<h2>Peers: ${esc(t.peer)}</h2><table><thead><tr><th>bootstrap / config</th>${t.tests.map(x => `<th>${esc(x)}</th>`).join('')}</tr></thead><tbody>`)
    for (const r of t.rows) {
      body.push(`<tr><th>${esc(r.label)}</th>${r.cells.map(c => {
        if (c == null) return '<td></td>'
        const mark = cellMark(c)
        const title = [`expected: ${c.expected}`, `status: ${c.status}`, c.durationMs != null ? `${(c.durationMs / 1000).toFixed(1)} s` : '', c.assertions != null ? `${c.assertions.passed}/${c.assertions.total} assertions` : '', c.detail ?? ''].filter(Boolean).join('\n')
        return `<td class="${mark.tone}" title="${esc(title)}">${mark.symbol} ${esc(mark.text)}${c.detail != null && c.asExpected === false ? `<div class="detail">${esc(oneLine(c.detail, 160))}</div>` : ''}</td>`
      }).join('')}</tr>`)
    }
    body.push('</tbody></table>')
  }
  body.push('<h2>Configurations</h2><ul>', ...Object.entries(m.configs).map(([k, v]) => `<li><code>${esc(k)}</code>: ${esc(v)}</li>`), '</ul>')
  body.push('<h2>Implementations</h2><ul>', ...Object.entries(m.versions).map(([k, v]) => `<li>${esc(k)}: ${esc(v)}</li>`),
    ...Object.entries(m.peersUnavailable).map(([k, v]) => `<li>peers ${esc(k)}: ${esc(v)}</li>`), '</ul>')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>chiral-sim interop matrix</title><style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
td{text-align:center;max-width:14em}td.ok{background:#e7f6e7}td.bad{background:#fbe3e3}td.none{color:#888}.detail{font-size:11px;text-align:left;color:#633}
</style></head><body>${body.join('\n')}</body></html>\n`
}
