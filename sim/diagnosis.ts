import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ADDRESS_MAPPERS } from '../nodes/libp2p.ts'
import type { NodeEvent } from '../nodes/events.ts'
import type { NodeInspection } from '../nodes/schemas.ts'
import type { Asymmetry, BlindPair } from '../scenarios/record.ts'

const STANDARD_PING = '/ipfs/ping/1.0.0'

/** What a node's DHT address mapper keeps of a peer's addresses (the same kad-dht mappers the nodes use). */
function mapAddresses (mapper: string, peerId: string, addresses: string[]): string[] {
  const fn = ADDRESS_MAPPERS[mapper as keyof typeof ADDRESS_MAPPERS]
  if (fn == null || mapper === 'passthrough') return addresses
  try {
    return fn({ id: peerIdFromString(peerId), multiaddrs: addresses.map(a => multiaddr(a)) }).multiaddrs.map(String)
  } catch {
    // Not a parsable peer or address: no verdict from the mapper, so it is not blamed.
    return addresses
  }
}

export interface DiagnosisInput {
  /** The peer that sees the other… */
  seer: NodeInspection
  /** …and the peer that does not see it back. */
  blind: NodeInspection
  /** Every bootstrap's state (for its limits). */
  bootstraps: NodeInspection[]
  events: ReadonlyArray<NodeEvent>
  /** How long the matrix already waited for pending admissions to finish. */
  settledMs?: number
}

/**
 * How a node learns of a peer that joined after it, said once for every join-order verdict. Waiting is not a
 * promise: a self-query meets only the node's own closest peers, and js kad-dht 16's routing-table refresh never
 * runs by itself (its RoutingTableRefresh has no start(), so libp2p never calls its afterStart; pinned by
 * nodes/kad-dht-facts.test.ts).
 */
const JOINER_LEARNED = 'A node learns of a later joiner only when one of its own DHT queries meets it or the joiner contacts it; its self-queries meet only its closest peers, and js kad-dht 16 never refreshes its routing table by itself, so waiting does it only for close peers.'

/**
 * Why `blind` does not see `seer` although `seer` sees `blind`: the eight causes of the facts notes, told apart
 * from the two nodes' own state. Checks run from the most specific evidence to the least, so that a node in client
 * mode is not reported as a join-order gap.
 */
export function diagnose ({ seer, blind, bootstraps, events, settledMs }: DiagnosisInput): Omit<Asymmetry, 'sees' | 'unseen'> {
  const S = seer.name
  const B = blind.name
  const known = blind.knownPeers.find(p => p.peerId === seer.peerId)
  const connections = blind.connections.filter(c => c.peerId === seer.peerId)

  if (seer.dhtProtocol !== blind.dhtProtocol) {
    return { cause: 'protocol-mismatch', explanation: `${S} speaks ${seer.dhtProtocol} but ${B} speaks ${blind.dhtProtocol}: kad-dht only admits peers on its own protocol.`, evidence: [`${S}.dhtProtocol = ${seer.dhtProtocol}`, `${B}.dhtProtocol = ${blind.dhtProtocol}`] }
  }
  if (seer.dhtMode === 'client' || !seer.protocols.includes(seer.dhtProtocol)) {
    return { cause: 'client-mode', explanation: `${S} runs its DHT in client mode, so it does not advertise ${seer.dhtProtocol} and ${B} never adds it to its routing table (${S} can still query and see others).`, evidence: [`${S}.dhtMode = ${seer.dhtMode}`, `${S} protocols lack ${seer.dhtProtocol}: ${!seer.protocols.includes(seer.dhtProtocol)}`] }
  }
  // From B's peer store when identify has filled it; otherwise from the addresses S announces, through B's
  // mapper: the verdict must not depend on whether identify finished before the inspection.
  const addresses = known != null && known.addresses.length > 0 ? known.addresses : seer.multiaddrs.map(a => a.split('/p2p/')[0] ?? a)
  const mapped = known != null && known.addresses.length > 0 ? known.mappedAddresses : mapAddresses(blind.addressMapper, seer.peerId, addresses)
  if (addresses.length > 0 && mapped.length === 0) {
    return { cause: 'address-mapper', explanation: `${B}'s DHT address mapper (${blind.addressMapper}) drops every address of ${S}, so kad-dht silently discards it.`, evidence: [`${B}.addressMapper = ${blind.addressMapper}`, `${S}'s addresses${known != null && known.addresses.length > 0 ? ` in ${B}'s peer store` : ' (as announced)'}: ${addresses.join(', ')}`, 'after the mapper: none'] }
  }
  if (!seer.protocols.includes(STANDARD_PING) || blind.pingFailures.includes(seer.peerId)) {
    return { cause: 'ping-check', explanation: `${S} does not answer ${STANDARD_PING}, so the liveness ping ${B}'s DHT makes before admitting a contact fails.`, evidence: [`${S} protocols include ${STANDARD_PING}: ${seer.protocols.includes(STANDARD_PING)}`, `${B} recorded a ping failure for ${S}: ${blind.pingFailures.includes(seer.peerId)}`] }
  }
  if (connections.some(c => c.limited) || (connections.length > 0 && known != null && !known.identified)) {
    return { cause: 'identify', explanation: `${B} is connected to ${S} but identify never completed (or the connection is limited), so the DHT topology never fired.`, evidence: [`limited connection: ${connections.some(c => c.limited)}`, `identified: ${known?.identified ?? false}`] }
  }
  const busy = events.filter(e => e.type === 'bootstrap:busy' && 'peerId' in e && e.peerId === blind.peerId)
  // Only a "busy" answer shows the limits; "refused" means the bootstrap was down, which is not this cause.
  const refusedConnects = events.filter(e => e.node === B && e.type === 'connect:result' && 'outcome' in e && e.outcome === 'busy')
  const bootstrapConnected = blind.connections.some(c => bootstraps.some(b => b.peerId === c.peerId))
  if (busy.length > 0 || (refusedConnects.length > 0 && !bootstrapConnected)) {
    return { cause: 'bootstrap-limits', explanation: `The bootstrap refused ${B}'s connection (limits reached), so ${B} never joined the DHT through it; ${S} learned of ${B} before the refusal.`, evidence: [`busy answers to ${B}: ${busy.length}`, `${B}'s busy answers: ${refusedConnects.length}`, `${B} connected to a bootstrap: ${bootstrapConnected}`] }
  }
  const failedDials = blind.dialFailures.filter(f => f.peerId === seer.peerId)
  const seerReachesBlind = seer.connections.some(c => c.peerId === blind.peerId && c.direction === 'outbound')
  if (failedDials.length > 0) {
    return { cause: 'one-way-fault', explanation: `${B} cannot dial ${S} (${failedDials[0]?.category}: ${failedDials[0]?.detail}) while ${S} ${seerReachesBlind ? 'does reach' : 'sees'} ${B}: the network path works in one direction only.`, evidence: [`${B}'s failed dials to ${S}: ${failedDials.length}`, `${S} has an outbound connection to ${B}: ${seerReachesBlind}`] }
  }
  // After the one-way fault: a failed dial explains a missing admission better than "still under way".
  const open = connections.filter(c => c.status === 'open')
  if (open.length > 0 && known?.identified === true && known.protocols.includes(blind.dhtProtocol)) {
    return {
      cause: 'admission-pending',
      explanation: `${B} is connected to ${S} and identify says ${S} serves ${blind.dhtProtocol}, so ${B}'s DHT is admitting it: kad-dht pings a new contact before adding it to the routing table. ` +
        (settledMs != null && settledMs > 0 ? `It was still not admitted after the matrix waited ${settledMs} ms: the admission ping is stuck or failed silently.` : 'It was not admitted yet when the matrix was taken.'),
      evidence: [`${B} has an open connection to ${S}: ${open.map(c => `${c.direction} ${c.remoteAddr}`).join(', ')}`, `${S}'s protocols in ${B}'s peer store include ${blind.dhtProtocol}`, `${S} in ${B}'s routing table: no`, ...(settledMs != null ? [`waited for admissions: ${settledMs} ms`] : [])]
    }
  }
  const joined = (name: string): number | undefined => events.find(e => e.node === name && e.type === 'connect:done' && 'success' in e && e.success)?.time
  const seerJoined = joined(S)
  const blindJoined = joined(B)
  const everConnected = events.some(e => e.node === B && e.type === 'connection:open' && 'peerId' in e && e.peerId === seer.peerId)
  if (!everConnected && seerJoined != null && blindJoined != null && seerJoined > blindJoined) {
    return { cause: 'join-order', explanation: `${S} joined after ${B}, and ${B} never connected to ${S}: nothing has told ${B} of ${S} yet. ${JOINER_LEARNED} A lookup of ${S} from ${B} (findPeer) finds it.`, evidence: [`${B} joined at +0 ms, ${S} at +${seerJoined - blindJoined} ms`, `${B} never connected to ${S}`] }
  }
  return {
    cause: 'unknown',
    explanation: `No recorded state explains why ${B} does not see ${S}.`,
    evidence: [
      `${B} knows ${S}: ${known != null}`,
      ...(known != null ? [`${S}'s addresses in ${B}'s peer store: ${known.addresses.join(', ') || 'none'}`, `after ${B}'s mapper: ${known.mappedAddresses.join(', ') || 'none'}`, `protocols known: ${known.protocols.length}`] : []),
      `connections: ${connections.map(c => `${c.direction} ${c.remoteAddr}`).join(', ') || 'none'}`
    ]
  }
}

export interface BlindInput {
  a: NodeInspection
  b: NodeInspection
  /** The bootstrap both joined through, by name, and its state when chiral-sim can inspect it. */
  bootstrap: { name: string, inspection?: NodeInspection }
  /**
   * What the bootstrap alone answers each peer's FIND_NODE for its own key (what its walk asks), after the snapshot:
   * `aForB` is A's answer, in which B is looked for (null: not asked).
   */
  answers: { aForB: string[] | null, bForA: string[] | null }
  events: ReadonlyArray<NodeEvent>
  settledMs?: number
}

/**
 * Why two peers connected to the same bootstrap see neither each other. A cause that explains one direction on
 * the peers themselves (client mode, a mapper, a pending admission) is the pair's; otherwise the bootstrap's
 * answers decide: it is the only way either peer can learn of the other.
 */
export function diagnoseBlind ({ a, b, bootstrap, answers, events, settledMs }: BlindInput): Pick<BlindPair, 'cause' | 'explanation' | 'evidence'> {
  const A = a.name
  const B = b.name
  const boot = bootstrap.name
  if (a.dhtProtocol !== b.dhtProtocol) {
    return { cause: 'protocol-mismatch', explanation: `${A} speaks ${a.dhtProtocol} and ${B} speaks ${b.dhtProtocol}: they are on two different DHTs.`, evidence: [`${A}.dhtProtocol = ${a.dhtProtocol}`, `${B}.dhtProtocol = ${b.dhtProtocol}`] }
  }
  if (a.dhtMode === 'client' && b.dhtMode === 'client') {
    return { cause: 'client-mode', explanation: `${A} and ${B} both run their DHT in client mode: neither advertises ${a.dhtProtocol}, so neither is ever added by anyone.`, evidence: [`${A}.dhtMode = client`, `${B}.dhtMode = client`] }
  }
  // A cause on the peers themselves, in either direction, comes before anything the bootstrap did.
  for (const [seer, blind] of [[a, b], [b, a]] as const) {
    const d = diagnose({ seer, blind, bootstraps: bootstrap.inspection != null ? [bootstrap.inspection] : [], events, ...(settledMs != null ? { settledMs } : {}) })
    if (!['unknown', 'join-order', 'one-way-fault', 'bootstrap-limits'].includes(d.cause)) return d
  }
  // Discovery did its part when each holds the other: only the dials (the matrix's probes) fail, in both directions.
  const dialed = (from: NodeInspection, to: NodeInspection): { knows: boolean, failed: NodeInspection['dialFailures'] } =>
    ({ knows: from.routingTable.includes(to.peerId), failed: from.dialFailures.filter(f => f.peerId === to.peerId) })
  const ab = dialed(a, b)
  const ba = dialed(b, a)
  const dialEvidence = [ab, ba].flatMap((d, i) => {
    const [from, to] = i === 0 ? [A, B] : [B, A]
    return d.knows && d.failed.length > 0 ? [`${from} holds ${to} in its routing table, and its dial to ${to} failed: ${d.failed.at(-1)!.category}: ${d.failed.at(-1)!.detail}`] : []
  })
  if (ab.knows && ba.knows && ab.failed.length > 0 && ba.failed.length > 0) {
    return {
      cause: 'unreachable-both-ways',
      explanation: `${A} and ${B} hold each other in their routing tables, so discovery worked, but neither can dial the other now: the network path between them fails in both directions (a partition, or a fault each way).`,
      evidence: dialEvidence
    }
  }
  const answered = (who: NodeInspection): string => {
    const ev = [...events].reverse().find(e => e.node === who.name && e.type === 'bootstrap:identified')
    const closer = ev != null && 'closerPeers' in ev ? ev.closerPeers : null
    return closer == null ? `${boot}'s answer to ${who.name}'s FIND_NODE when it joined: not recorded` : `${boot} answered ${who.name}'s FIND_NODE with ${closer} peer${closer === 1 ? '' : 's'} when it joined`
  }
  const live = (asker: string, target: string, closer: string[] | null, targetId: string): string =>
    closer == null ? `${boot}'s answer to ${asker}'s walk (FIND_NODE of itself) now: not asked` : `${boot}'s answer to ${asker}'s walk (FIND_NODE of itself) now: ${closer.length} peer${closer.length === 1 ? '' : 's'}, ${closer.includes(targetId) ? `${target} among them` : `${target} not among them`}`
  const evidence = [
    `${A}'s routing table: ${a.routingTable.length} entries${ab.knows ? `, ${B} among them` : ''}; ${B}'s: ${b.routingTable.length}${ba.knows ? `, ${A} among them` : ''}`,
    ...dialEvidence,
    answered(a), answered(b),
    live(A, B, answers.aForB, b.peerId), live(B, A, answers.bForA, a.peerId)
  ]
  const table = bootstrap.inspection?.routingTable
  if (table != null) evidence.push(`${boot}'s routing table has ${A}: ${table.includes(a.peerId)}, ${B}: ${table.includes(b.peerId)} (its mapper: ${bootstrap.inspection!.addressMapper})`)
  /** Recorded at connect: the later joiner was told of nobody although the other had already joined. */
  function joinedToNobody (): boolean {
    const identifiedAt = (who: NodeInspection): { at: number, closer: number | null } | undefined => {
      const ev = [...events].reverse().find(e => e.node === who.name && e.type === 'bootstrap:identified')
      return ev == null ? undefined : { at: ev.time, closer: 'closerPeers' in ev ? ev.closerPeers : null }
    }
    const joinedAt = (who: NodeInspection): number | undefined => events.find(e => e.node === who.name && e.type === 'connect:done' && 'success' in e && e.success)?.time
    for (const [late, early] of [[a, b], [b, a]] as const) {
      const told = identifiedAt(late)
      const earlyJoined = joinedAt(early)
      if (told?.closer === 0 && earlyJoined != null && earlyJoined < told.at) return true
    }
    return false
  }
  const carries = answers.aForB?.includes(b.peerId) === true || answers.bForA?.includes(a.peerId) === true
  // One may know the other and fail to dial it (a fault that way): the other direction is still a discovery gap.
  const knower = ab.knows ? { who: A, of: B } : ba.knows ? { who: B, of: A } : null
  if (carries) {
    const gap = knower == null
      ? `neither ${A} nor ${B} has queried the DHT for the other since the other joined`
      : `${knower.of} has not queried the DHT for ${knower.who} since it joined (${knower.who} does hold ${knower.of}, and cannot dial it now)`
    return { cause: 'join-order', explanation: `${boot}'s answers do carry them now, but ${gap}. ${JOINER_LEARNED} A lookup of one by the other (findPeer) finds it.`, evidence }
  }
  const asked = answers.aForB != null || answers.bForA != null || joinedToNobody()
  const bootstrapLacks = table != null && (!table.includes(a.peerId) || !table.includes(b.peerId))
  if (asked || bootstrapLacks) {
    const told = (asker: string, target: string, closer: string[] | null): string | undefined =>
      closer == null ? undefined : `${asker}'s FIND_NODE of itself with ${closer.length} peer${closer.length === 1 ? '' : 's'}${closer.length > 0 ? `, not ${target}` : ''}`
    const figures = [told(A, B, answers.aForB), told(B, A, answers.bForA)].filter(x => x != null)
    return {
      cause: 'empty-answers',
      explanation: `Both are connected to ${boot}, but ${boot}'s answers never carry the other${figures.length > 0 ? `: ${boot} answered ${figures.join(' and ')}` : ''}. ` +
        `${bootstrapLacks ? `Its routing table lacks them: its address mapper (${bootstrap.inspection!.addressMapper}) drops their addresses or it never admitted them.` : 'It filters the peers it returns (for instance it keeps only routable addresses: on loopback or a private network that is none).'} ` +
        'The peers have nobody else to ask, so DHT queries cannot find anyone: not "you might be first".',
      evidence
    }
  }
  return { cause: 'unknown', explanation: `No recorded state explains why ${A} and ${B}, both connected to ${boot}, see neither each other.`, evidence }
}
