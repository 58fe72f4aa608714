import type { DiscoveryStatus } from './schemas.ts'

/**
 * A failed dial that itself says the peer left: nothing listens at its address any more (a closed port, a memory
 * address without a listener). Not every `refused` is that: a gater's denial, a reset or a connection closed in
 * the handshake come from something that is there. A peer that left can also go unanswered (a dial that times out
 * because the host is gone, or waits on a DHT lookup of an address nobody has any more): only someone who knows
 * who left can say so (judgeWithDepartures).
 */
export function isStaleDial (error: string | undefined): boolean {
  return error?.startsWith('refused:') === true && /\bECONNREFUSED\b|No memory listener found/.test(error)
}

/**
 * A verification judged again by someone who knows which peers had left the network while it ran (the harness's
 * roster, or a record's start/stop events). Only `peerDialing` is judged again: when every dial it counted as
 * failed went to a peer that had left, the node's discovery did what it should, and the verification is
 * `verified`. Everything else stays the node's own verdict: a check other than peerDialing that failed, a failed
 * dial to a peer that was up, or no discovered peer reachable at all (a node that knows only departed peers has
 * not shown that it finds live ones).
 */
export function judgeWithDepartures (status: DiscoveryStatus, departed: (peerId: string) => boolean): { status: DiscoveryStatus, departedDials: string[] } {
  const unchanged = { status, departedDials: [] }
  if (status.overall !== 'partial' || status.peerDialing || status.unreachable == null) return unchanged
  const otherFailures = (['bootstrapConnected', 'routingTablePopulated', 'eventsWorking', 'dhtReadWrite', 'fileDiscovery'] as const)
    .filter(c => !status[c] && !status.skipped.includes(c))
  if (otherFailures.length > 0) return unchanged
  const failed = status.unreachable.filter(u => !isStaleDial(u.error))
  if (failed.length === 0 || !failed.every(u => departed(u.peerId))) return unchanged
  if (status.unreachable.length >= status.discoveredPeers.length) return unchanged
  const n = status.discoveredPeers.length
  return {
    status: {
      ...status,
      peerDialing: true,
      overall: 'verified',
      message: `✅ Discovered ${n} peer${n === 1 ? '' : 's'} - discovery verified (${failed.length} unanswered dial${failed.length === 1 ? '' : 's'} went to peers that had left the network)`
    },
    departedDials: failed.map(u => u.peerId)
  }
}
