import type { ScenarioRecord } from '../scenarios/record.ts'

/**
 * Node names in place of peer IDs: "peerA does not see peerB" reads at a glance, `12D3KooWQx…` does not. Peer IDs
 * stay one hover (or one legend row) away, because an engineer grepping a node's own log needs them.
 */

export interface PeerNames {
  /** The node name of a peer ID, when the peer is a node of the scenario. */
  nameOf(peerId: string): string | undefined
  /** `text` with every known peer ID replaced by its node name. */
  named(text: string): string
  /** Known peer IDs and their names, longest first. */
  readonly entries: ReadonlyArray<readonly [peerId: string, name: string]>
  /** Every node of the scenario, with or without a peer ID (a step's targets may also be link names). */
  readonly nodes: ReadonlySet<string>
}

/**
 * Peer IDs from the nodes' records and from their `node:started` events (a restarted node keeps its identity, an
 * external node's is only known once it answered).
 */
export function peerNames (s: Pick<ScenarioRecord, 'nodes' | 'events'>): PeerNames {
  const byId = new Map<string, string>()
  for (const node of s.nodes) if (node.peerId != null && node.peerId !== '') byId.set(node.peerId, node.name)
  for (const e of s.events) if (e.type === 'node:started' && e.peerId !== '' && !byId.has(e.peerId)) byId.set(e.peerId, e.node)
  // Longest first, so that an ID that is a prefix of another never replaces part of it.
  const entries = [...byId].sort((a, b) => b[0].length - a[0].length)
  const pattern = entries.length === 0 ? undefined : new RegExp(entries.map(([id]) => escapeRegExp(id)).join('|'), 'g')
  return {
    entries,
    nodes: new Set([...s.nodes.map(node => node.name), ...s.events.map(e => e.node)]),
    nameOf: peerId => byId.get(peerId),
    named: text => pattern === undefined ? text : text.replace(pattern, id => byId.get(id) ?? id)
  }
}

const escapeRegExp = (value: string): string => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
