import type { Matrix, ScenarioRecord } from '../scenarios/record.ts'
import { formatPlanOffset } from './format.ts'
import { html, type Markup } from './html-markup.ts'
import { nodeLink } from './html-nodes.ts'
import type { PeerNames } from './names.ts'

/**
 * The who-sees-whom grid and the asymmetry diagnosis: the view for "A sees B but B doesn't see A".
 * Rows see columns.
 */

const key = (from: string, to: string): string => JSON.stringify([from, to])

/** Pairs where exactly one side sees the other, derived from the cells so an undiagnosed asymmetry still shows. */
export function asymmetricPairs (matrix: Matrix): Set<string> {
  const sees = new Map(matrix.cells.map(c => [key(c.from, c.to), c.sees]))
  const pairs = new Set<string>()
  for (const c of matrix.cells) {
    if (c.from !== c.to && c.sees !== (sees.get(key(c.to, c.from)) ?? false)) {
      pairs.add(key(c.from, c.to))
      pairs.add(key(c.to, c.from))
    }
  }
  return pairs
}

const yesNo = (v: boolean | null): string => v === null ? 'not checked' : v ? 'yes' : 'no'

/** Every matrix step's snapshot, each under its step: a failing earlier matrix keeps its cells and evidence. */
export function matricesSection (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const all = s.matrices ?? (s.matrix !== undefined ? [{ step: undefined, label: undefined, passed: undefined, matrix: s.matrix }] : [])
  return html`${all.map(m => html`<h4>Who sees whom${m.step !== undefined ? ` — step ${m.step}${m.label != null ? ` (${m.label})` : ''}` : ''}${m.passed === undefined ? '' : m.passed ? ': as expected' : ': NOT as expected'}</h4>
    <div class="${m.passed === false ? 'matrix-failed' : ''}">${matrixSection(m.matrix, s, index, names)}</div>`)}`
}

export function matrixSection (matrix: Matrix, s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const cells = new Map(matrix.cells.map(c => [key(c.from, c.to), c]))
  const asym = asymmetricPairs(matrix)
  const diagnosisFor = (from: string, to: string): string | undefined => {
    const d = matrix.asymmetries.find(a => (a.sees === from && a.unseen === to) || (a.sees === to && a.unseen === from))
    return d === undefined ? undefined : `${d.sees} sees ${d.unseen} but ${d.unseen} does not see ${d.sees} — cause: ${d.cause}`
  }
  const row = (from: string): Markup => html`<tr><th scope="row">${nodeLink(index, from, names)}</th>${matrix.peers.map(to => {
    if (from === to) return html`<td class="self">·</td>`
    const c = cells.get(key(from, to))
    const isAsym = asym.has(key(from, to))
    const blindPair = blind.find(b => (b.peers[0] === from && b.peers[1] === to) || (b.peers[0] === to && b.peers[1] === from))
    const title = c === undefined
      ? `${from} → ${to}: not inspected`
      : [`${from} ${c.sees ? 'sees' : 'does not see'} ${to}`,
          `in routing table: ${yesNo(c.inRoutingTable)}`, `discovered: ${yesNo(c.discovered)}`,
          `found by lookup: ${yesNo(c.foundByLookup)}`, `dialable: ${yesNo(c.dialable)}`,
          ...(isAsym ? [diagnosisFor(from, to) ?? 'asymmetric, no diagnosis recorded'] : []),
          ...(blindPair != null ? [`blind both ways although both joined through ${blindPair.bootstrap} — cause: ${blindPair.cause}`] : [])].join('\n')
    return html`<td class="${[c?.sees === true ? 'sees' : 'unseen', isAsym ? 'asym' : '', blindPair != null ? 'blind' : ''].join(' ')}" data-from="${from}" data-to="${to}" title="${title}">${c?.sees === true ? '✔' : ''}</td>`
  })}</tr>`

  const blind = matrix.blind ?? []
  const diagnosed = new Set(matrix.asymmetries.flatMap(a => [key(a.sees, a.unseen), key(a.unseen, a.sees)]))
  const undiagnosed = matrix.cells.filter(c => c.sees && asym.has(key(c.from, c.to)) && !diagnosed.has(key(c.from, c.to)))

  return html`<div class="matrix-wrap">
    <p class="muted">At ${formatPlanOffset(s, matrix.at)} (plan time)${matrix.settledMs != null && matrix.settledMs > 0 ? `, after waiting ${matrix.settledMs} ms (real) for admissions under way` : ''}; each row sees the columns marked ✔; red cells are asymmetric pairs, orange cells pairs blind both ways.</p>
    <table class="matrix">
      <thead><tr><th></th>${matrix.peers.map(p => html`<th scope="col">${nodeLink(index, p, names)}</th>`)}</tr></thead>
      <tbody>${matrix.peers.map(row)}</tbody></table>
    ${blind.length > 0 ? html`<ul class="asymmetries">${blind.map(b => html`<li>
          <strong>${b.peers[0]} and ${b.peers[1]} see neither each other, though both joined through ${b.bootstrap}</strong>
          <span class="cause">${b.cause}</span>
          <p>${b.explanation}</p>
          ${b.evidence.length > 0 ? html`<ul class="evidence">${b.evidence.map(e => html`<li>${e}</li>`)}</ul>` : ''}
        </li>`)}</ul>` : ''}
    ${matrix.asymmetries.length + undiagnosed.length === 0
      ? html`<p class="ok-note">Every pair is symmetric${blind.length > 0 ? ' (but see the blind pairs above)' : ''}.</p>`
      : html`<ul class="asymmetries">${matrix.asymmetries.map(a => html`<li>
          <strong>${a.sees} sees ${a.unseen} but ${a.unseen} does not see ${a.sees}</strong>
          <span class="cause">${a.cause}</span>
          <p>${names.named(a.explanation)}</p>
          ${a.evidence.length > 0 ? html`<ul class="evidence">${a.evidence.map(e => html`<li ${names.named(e) !== e ? html`title="${e}"` : ''}>${names.named(e)}</li>`)}</ul>` : ''}
        </li>`)}${undiagnosed.map(c => html`<li><strong>${c.from} sees ${c.to} but ${c.to} does not see ${c.from}</strong> <span class="cause">no diagnosis recorded</span></li>`)}</ul>`}
  </div>`
}
