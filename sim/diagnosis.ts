import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ADDRESS_MAPPERS } from '../nodes/libp2p.ts'
import type { NodeEvent } from '../nodes/events.ts'
import type { NodeInspection } from '../nodes/schemas.ts'
import type { Asymmetry } from './record.ts'

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
}

/**
 * Why `blind` does not see `seer` although `seer` sees `blind`: the eight causes of the facts notes, told apart
 * from the two nodes' own state. Checks run from the most specific evidence to the least, so that a node in client
 * mode is not reported as a join-order gap.
 */
export function diagnose ({ seer, blind, bootstraps, events }: DiagnosisInput): Omit<Asymmetry, 'sees' | 'unseen'> {
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
  const joined = (name: string): number | undefined => events.find(e => e.node === name && e.type === 'connect:done' && 'success' in e && e.success)?.time
  const seerJoined = joined(S)
  const blindJoined = joined(B)
  const everConnected = events.some(e => e.node === B && e.type === 'connection:open' && 'peerId' in e && e.peerId === seer.peerId)
  if (!everConnected && seerJoined != null && blindJoined != null && seerJoined > blindJoined) {
    return { cause: 'join-order', explanation: `${S} joined after ${B} and ${B} has not run a self-query or routing-table refresh since, so ${B} has not learned of ${S} yet; it will at its next refresh.`, evidence: [`${B} joined at +0 ms, ${S} at +${seerJoined - blindJoined} ms`, `${B} never connected to ${S}`] }
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
