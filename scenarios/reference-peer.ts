import type { NodeConfig } from '../nodes/config.ts'

/**
 * Peers of other implementations (issue 9): a scenario peer with `implementation: go` runs interop/go's
 * go-libp2p node, which serves the control channel's contract (nodes/contract.schema.json), instead of a chiral
 * node. The one list of what such a peer can be configured with, read by `validate` (scenarios/schema.ts) and by
 * the launcher (sim/backends/reference-peer.ts), so a knob it lacks is refused before a run, never ignored in one.
 */

export const PEER_IMPLEMENTATIONS = ['js', 'go'] as const
export type PeerImplementation = typeof PEER_IMPLEMENTATIONS[number]
/** Modes that start a reference peer: a process on this machine reached over loopback TCP. */
export const REFERENCE_PEER_MODES = ['tcp', 'process'] as const

/** What the go node cannot do of `config`, each with the field and the fix; empty when it can run it. */
export function referencePeerUnsupported (config: NodeConfig): Array<{ field: string, message: string }> {
  const out: Array<{ field: string, message: string }> = []
  const { dht } = config
  if (dht.addressMapper === 'removePublic') {
    out.push({ field: 'dht.addressMapper', message: 'a go peer has no "removePublic" address mapper (it has passthrough, or removePrivate as --routable-only); use one of those or a js peer' })
  }
  if (dht.pingProtocolPrefix !== 'ipfs') {
    out.push({ field: 'dht.pingProtocolPrefix', message: 'a go peer serves ping only on /ipfs/ping/1.0.0; remove pingProtocolPrefix or use a js peer' })
  }
  if (dht.initialQuerySelfIntervalMs === null) {
    out.push({ field: 'dht.initialQuerySelfIntervalMs', message: 'go-libp2p-kad-dht cannot turn its self-queries off; remove the field or use a js peer' })
  }
  if (config.autoVerify) {
    out.push({ field: 'autoVerify', message: 'a go peer does not verify discovery on its own after connecting; add a verify step instead' })
  }
  if ((config.announce ?? []).length > 0 || config.network.denyDial.length > 0 || config.network.routes.length > 0) {
    out.push({ field: 'implementation', message: 'a go peer cannot sit behind fault proxies (it has no announce addresses, dial deny list or routes); fault the links of js peers, or drop the faults' })
  }
  return out
}
