import { createHash } from 'node:crypto'
import { html, type Markup } from './html-markup.ts'
import { ScenarioOutcomeSchema } from './outcome.ts'
import type { Report } from './report-schema.ts'

/**
 * Narrowing a long report: filters by outcome, tag and mode, and a search over scenarios, node names, peer IDs and
 * event types. The page is complete without them: the toolbar is hidden until the script shows it, so a reader
 * with scripts off sees every scenario and no dead control. The script is inline and allowed by its hash alone,
 * so the page still cannot load or send anything.
 */

/** Plain ES2020, no dependencies: the page must work offline in any current browser. */
export const FILTER_SCRIPT = `(() => {
  const bar = document.getElementById('filters')
  if (bar === null) return
  bar.hidden = false
  const sections = Array.from(document.querySelectorAll('details.scenario'))
  const cards = Array.from(document.querySelectorAll('#failures .failure-card'))
  const search = bar.querySelector('input[name="q"]')
  const outcomes = Array.from(bar.querySelectorAll('input[name="outcome"]'))
  const tag = bar.querySelector('select[name="tag"]')
  const mode = bar.querySelector('select[name="mode"]')
  const count = bar.querySelector('.filter-count')
  const rowText = new WeakMap()
  const textOf = row => {
    let text = rowText.get(row)
    if (text === undefined) {
      // A row belongs to its node (the stream it is in, or the node it names first): searching the node's name or
      // peer ID finds its rows, although rows show names in place of peer IDs.
      const own = row.closest('details.node')
      const link = row.querySelector('a.node-link')
      const node = own !== null ? own : link === null ? null : document.getElementById(link.getAttribute('href').slice(1))
      text = [node === null ? '' : node.dataset.search, row.textContent].join(' ').toLowerCase()
      rowText.set(row, text)
    }
    return text
  }
  const apply = () => {
    const wanted = new Set(outcomes.filter(box => box.checked).map(box => box.value))
    const terms = search.value.trim().toLowerCase().split(/\\s+/).filter(t => t !== '')
    const visible = new Set()
    for (const section of sections) {
      const d = section.dataset
      // A scenario matches the search by its own index (name, nodes, peer IDs, event types) or by any event row.
      const tables = Array.from(section.querySelectorAll('table.events')).map(table => {
        const rows = Array.from(table.querySelectorAll('tr.ev'))
        return { table, rows, hits: terms.length === 0 ? [] : rows.filter(row => terms.every(t => textOf(row).includes(t))) }
      })
      const show = wanted.has(d.outcome) && (tag.value === '' || JSON.parse(d.tags).includes(tag.value)) &&
        (mode.value === '' || d.mode === mode.value) &&
        (terms.every(t => d.search.includes(t)) || tables.some(t => t.hits.length > 0))
      section.hidden = !show
      if (show) visible.add(d.scenario)
      for (const { table, rows, hits } of tables) {
        for (const row of rows) {
          row.hidden = hits.length > 0 && !hits.includes(row)
          row.classList.toggle('hit', hits.includes(row))
        }
        const note = table.previousElementSibling
        if (note !== null && note.classList.contains('match-note')) note.textContent = hits.length > 0 ? hits.length + ' of ' + rows.length + ' events match "' + terms.join(' ') + '"' : ''
        if (show && hits.length > 0) {
          for (let el = table.parentElement; el !== null && el !== section.parentElement; el = el.parentElement) if (el.tagName === 'DETAILS') el.open = true
        }
      }
    }
    for (const card of cards) card.hidden = !visible.has(card.dataset.scenario)
    count.textContent = visible.size + ' of ' + sections.length + ' scenarios shown'
  }
  bar.addEventListener('input', apply)
  bar.addEventListener('change', apply)
  bar.querySelector('button[name="reset"]').addEventListener('click', () => {
    search.value = ''
    tag.value = ''
    mode.value = ''
    for (const box of outcomes) box.checked = true
    apply()
  })
  bar.querySelector('button[name="expand"]').addEventListener('click', () => { for (const s of sections) if (!s.hidden) s.open = true })
  bar.querySelector('button[name="collapse"]').addEventListener('click', () => { for (const s of sections) s.open = false })
  document.addEventListener('keydown', event => {
    if (event.key === '/' && document.activeElement !== search) { event.preventDefault(); search.focus() }
  })
  // A link to a node, a step or a scenario inside folded sections opens them on the way.
  const reveal = () => {
    let id = location.hash.slice(1)
    try { id = decodeURIComponent(id) } catch {}
    const target = id === '' ? null : document.getElementById(id)
    for (let el = target; el !== null; el = el.parentElement) {
      if (el.tagName === 'DETAILS') el.open = true
      if (el.hidden) el.hidden = false
    }
    if (target !== null) target.scrollIntoView()
  }
  window.addEventListener('hashchange', reveal)
  reveal()
  apply()
})()
`

/** The Content-Security-Policy source that allows exactly this script and no other. */
export const FILTER_SCRIPT_HASH = `'sha256-${createHash('sha256').update(FILTER_SCRIPT).digest('base64')}'`

export function filterBar (report: Report): Markup {
  const tags = [...new Set(report.scenarios.flatMap(s => s.tags))].sort()
  const modes = [...new Set(report.scenarios.map(s => s.mode))].sort()
  const outcomes = ScenarioOutcomeSchema.options
  return html`<div id="filters" class="filters" hidden>
    <input type="search" name="q" placeholder="Search: scenario, node, peer ID, event type  (press /)" aria-label="search" autocomplete="off">
    <span class="outcome-filters">${outcomes.map(o => html`<label><input type="checkbox" name="outcome" value="${o}" checked> ${o} (${report.summary[o]})</label>`)}</span>
    <label>tag <select name="tag"><option value="">all</option>${tags.map(t => html`<option value="${t}">${t}</option>`)}</select></label>
    <label>mode <select name="mode"><option value="">all</option>${modes.map(m => html`<option value="${m}">${m}</option>`)}</select></label>
    <button type="button" name="reset">reset</button><button type="button" name="expand">expand all</button><button type="button" name="collapse">collapse all</button>
    <span class="filter-count muted"></span>
  </div>`
}
