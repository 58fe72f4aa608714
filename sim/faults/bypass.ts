/**
 * libp2p peers learn each other's real listen addresses through identify and the DHT. A peer that dials one of
 * those instead of the link's proxy routes around the fault, and the run "passes" a fault that never happened.
 * This check turns that into an invalid run. It is pure: the runner gathers the proxy counters (Link.bytes(),
 * read after the nodes stopped, since Toxiproxy credits bytes when a connection closes) and the connections each
 * node saw between the link's endpoints on an address that is not the proxy's.
 */

export interface BypassCheckInput {
  /** The faulted link's name. Only faulted links need checking. */
  link: string
  /** What the link's proxy carried; `received` (what reached the proxy) is used when given. */
  proxyBytes: { upstream: number, downstream: number, received?: { upstream: number, downstream: number } }
  /** Connections between the link's two endpoints whose remote address is not the proxy's listen address. */
  connectionsOutsideProxy: Array<{ from: string, to: string, remoteAddr: string }>
}

export interface BypassCheckResult {
  valid: boolean
  problems: string[]
}

const MAX_LISTED = 5

export function checkNoBypass (input: BypassCheckInput[]): BypassCheckResult {
  const problems: string[] = []
  for (const { link, proxyBytes, connectionsOutsideProxy } of input) {
    if (connectionsOutsideProxy.length === 0) continue
    // A toxic can hold or cut what the proxy delivers, so what reached it counts as carried too.
    const carried = Math.max(
      proxyBytes.upstream + proxyBytes.downstream,
      proxyBytes.received != null ? proxyBytes.received.upstream + proxyBytes.received.downstream : 0
    )
    const seen = new Set<string>()
    const described: string[] = []
    for (const c of connectionsOutsideProxy) {
      const d = `${c.from} → ${c.to} via ${c.remoteAddr}`
      if (seen.has(d)) continue
      seen.add(d)
      described.push(d)
    }
    const listed = described.slice(0, MAX_LISTED).join(', ') + (described.length > MAX_LISTED ? ` and ${described.length - MAX_LISTED} more` : '')
    const fix = 'every node must announce, and dial, the proxied address of this link'
    if (carried === 0) {
      problems.push(
        `link ${link}: the fault did nothing — its proxy carried 0 bytes while the nodes connected on a non-proxied ` +
        `address (${listed}); ${fix}`
      )
    } else {
      // Some traffic went through the proxy, some around it: what the run measured is a mix of faulted and clean
      // paths, which is no more trustworthy than a fault that did nothing.
      problems.push(
        `link ${link}: traffic partly bypassed the fault — its proxy carried ${carried} bytes, but the nodes also ` +
        `connected on a non-proxied address (${listed}); ${fix}`
      )
    }
  }
  return { valid: problems.length === 0, problems }
}
