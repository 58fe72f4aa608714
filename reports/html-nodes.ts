import type { NodeEvent } from '../nodes/events.ts'
import type { ScenarioRecord } from '../scenarios/record.ts'
import { eventFamily } from './events.ts'
import { describeEvent, formatPlanOffset, plural } from './format.ts'
import { html, type Markup } from './html-markup.ts'
import type { PeerNames } from './names.ts'

/**
 * A scenario's nodes: the legend from names to peer IDs and addresses, and per node what it attached to the run —
 * its own event stream and, for a process, container or external binary, the end of its output. Every node name
 * in the scenario's section links here.
 */

/** Rows of one node's event stream in the page; report.json keeps them all. */
export const NODE_EVENT_LIMIT = 300

/** Ids and fragments from node names: any character outside [A-Za-z0-9_-] spelled as _hex, so no escaping is needed. */
export const nodeAnchor = (scenarioIndex: number, node: string): string =>
  `s${scenarioIndex}-node-${node.replace(/[^A-Za-z0-9-]/g, c => `_${c.codePointAt(0)!.toString(16)}_`)}`

/**
 * A node name as a link to its attachments, its peer ID on hover. Event rows leave the hover out (`withPeerId`
 * false): repeated on thousands of rows it would double the page, and the nodes table lists every peer ID.
 */
export function nodeLink (scenarioIndex: number, node: string, names: PeerNames, withPeerId = true): Markup {
  if (!names.nodes.has(node)) return html`${node}`
  const peerId = withPeerId ? names.entries.find(([, name]) => name === node)?.[0] : undefined
  return html`<a class="node-link" href="#${nodeAnchor(scenarioIndex, node)}" ${peerId !== undefined ? html`title="${peerId}"` : ''}>${node}</a>`
}

/** One event as a table row, peer IDs shown as node names; times in plan time like the rest of the scenario. */
export function eventRow (s: ScenarioRecord, e: NodeEvent, names: PeerNames, node: Markup | undefined): Markup {
  return html`<tr class="ev"><td class="mono">${formatPlanOffset(s, e.time)}</td>${node !== undefined ? html`<td>${node}</td>` : ''}<td class="type"><i class="swatch fam-${eventFamily(e.type)}"></i>${e.type}</td><td class="detail">${names.named(describeEvent(e, undefined, s.timeScale))}</td></tr>`
}

export function nodesSection (s: ScenarioRecord, index: number, names: PeerNames): Markup {
  const listed = new Set(s.nodes.map(node => node.name))
  const extra = [...new Set(s.events.map(e => e.node))].filter(name => !listed.has(name))
  const nodes = [...s.nodes, ...extra.map(name => ({ name, role: 'external' as const, peerId: undefined, multiaddrs: [] as string[], output: undefined }))]
  const byNode = Map.groupBy(s.events, e => e.node)
  return html`<table class="nodes"><thead><tr><th>node</th><th>role</th><th>peer ID</th><th>address</th><th>attached</th></tr></thead><tbody>${
    nodes.map(node => {
      const events = byNode.get(node.name) ?? []
      return html`<tr><td>${nodeLink(index, node.name, names)}</td><td>${node.role}</td><td class="mono peer-id">${node.peerId ?? '—'}</td>
        <td class="mono">${node.multiaddrs.map(a => html`${a}<br>`)}</td>
        <td><a href="#${nodeAnchor(index, node.name)}">${plural(events.length, 'event')}${node.output !== undefined ? ' · output' : ''}</a></td></tr>`
    })
  }</tbody></table>${nodes.map(node => {
    const events = byNode.get(node.name) ?? []
    const shown = events.slice(0, NODE_EVENT_LIMIT)
    const failing = events.some(e => e.type === 'log' && e.level === 'error')
    return html`<details class="node" id="${nodeAnchor(index, node.name)}" data-node="${node.name}" data-search="${[node.name, node.peerId ?? ''].join(' ').toLowerCase()}">
      <summary><b>${node.name}</b> <span class="muted">${node.role}${node.peerId != null ? ` · ${node.peerId}` : ''} · ${plural(events.length, 'event')}${node.output !== undefined ? ` · output of ${plural(node.output.starts, 'start')}` : ''}${failing ? ' · logged an error' : ''}</span></summary>
      ${node.output !== undefined
        ? html`<h5>Output (stdout and stderr, last part of each start)</h5><pre class="output">${node.output.text}</pre>`
        : html`<p class="muted">${noOutput(s, node.role)}</p>`}
      <h5>Event stream</h5>
      ${events.length === 0
        ? html`<p class="muted">No events.</p>`
        : html`${events.length > shown.length ? html`<p class="note">Showing the first ${shown.length} of ${events.length} events; report.json holds all of them.</p>` : ''}
        <table class="events node-events"><thead><tr><th>plan time</th><th>event</th><th>details</th></tr></thead><tbody>${shown.map(e => eventRow(s, e, names, undefined))}</tbody></table>`}
    </details>`
  })}`
}

function noOutput (s: ScenarioRecord, role: string): string {
  // Blackholes are recorded as 'external' too: the text must hold for both.
  if (role === 'external') return 'No output recorded: not a process or container chiral-sim started, or it printed nothing.'
  if (s.mode === 'memory' || s.mode === 'tcp') return `No output of its own: in ${s.mode} mode the node runs inside the harness process.`
  return 'It printed nothing.'
}
