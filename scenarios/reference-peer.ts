import type { NodeConfig } from '../nodes/config.ts'

/**
 * Peers of other implementations (issue 9): a scenario peer with `implementation: go` or `rust` runs interop/go's
 * go-libp2p node or interop/rust's rust-libp2p node, which serve the control channel's contract
 * (nodes/contract.schema.json), instead of a chiral node. The one list of what such a peer can be configured with,
 * read by `validate` (scenarios/schema.ts) and by the launcher (sim/backends/reference-peer.ts), so a knob it lacks
 * is refused before a run, never ignored in one.
 */

export const PEER_IMPLEMENTATIONS = ['js', 'go', 'rust'] as const
export type PeerImplementation = typeof PEER_IMPLEMENTATIONS[number]
export type ForeignPeerImplementation = Exclude<PeerImplementation, 'js'>
/** Modes that start a reference peer: a process on this machine reached over loopback TCP. */
export const REFERENCE_PEER_MODES = ['tcp', 'process'] as const

const DHT_LIBRARY: Record<ForeignPeerImplementation, string> = { go: 'go-libp2p-kad-dht', rust: 'rust-libp2p\'s Kademlia' }

/** What a go or rust node cannot do of `config`, each with the field and the fix; empty when it can run it. */
export function referencePeerUnsupported (impl: ForeignPeerImplementation, config: NodeConfig): Array<{ field: string, message: string }> {
  const out: Array<{ field: string, message: string }> = []
  const { dht } = config
  const a = `a ${impl} peer`
  if (dht.addressMapper === 'removePublic') {
    out.push({ field: 'dht.addressMapper', message: `${a} has no "removePublic" address mapper (it has passthrough, or removePrivate as --routable-only); use one of those or a js peer` })
  }
  if (dht.pingProtocolPrefix !== 'ipfs') {
    out.push({ field: 'dht.pingProtocolPrefix', message: `${a} serves ping only on /ipfs/ping/1.0.0; remove pingProtocolPrefix or use a js peer` })
  }
  if (dht.initialQuerySelfIntervalMs === null) {
    out.push({ field: 'dht.initialQuerySelfIntervalMs', message: `${DHT_LIBRARY[impl]} cannot turn its self-queries off here; remove the field or use a js peer` })
  }
  for (const knob of ['alpha', 'disjointPaths'] as const) {
    if (dht[knob] != null) out.push({ field: `dht.${knob}`, message: `${a} is not told js-libp2p's ${knob} (its ${DHT_LIBRARY[impl]} uses its own query settings); remove the field or use a js peer` })
  }
  if (config.autoVerify) {
    out.push({ field: 'autoVerify', message: `${a} does not verify discovery on its own after connecting; add a verify step instead` })
  }
  if ((config.announce ?? []).length > 0 || config.network.denyDial.length > 0 || config.network.routes.length > 0) {
    out.push({ field: 'implementation', message: `${a} cannot sit behind fault proxies (it has no announce addresses, dial deny list or routes); fault the links of js peers, or drop the faults` })
  }
  return out
}
