import type { SingleKadDHT } from '@libp2p/kad-dht'
import type { NodeConfig, PlanTiming } from './config.ts'
import type { EventLog } from './events.ts'
import type { ChiralLibp2p } from './libp2p.ts'
import type { MetricsRecorder } from './metrics.ts'
import type { ErrorCategory } from './schemas.ts'

/** What every feature module of a node shares. Features get this, never the LocalNode itself. */
export interface NodeContext {
  readonly config: NodeConfig
  /** The plan's timing with timeScale applied: what the node actually waits. */
  readonly timing: PlanTiming
  readonly libp2p: ChiralLibp2p
  readonly log: EventLog
  readonly metrics: MetricsRecorder
  /** Peer IDs of the configured bootstraps: excluded from "discovered peers" as the plan asks. */
  readonly bootstrapPeerIds: Set<string>
  /** Peers discovered through the DHT (routing table or query results), bootstraps excluded, with first-seen time. */
  readonly discovered: Map<string, number>
  readonly dialFailures: Array<{ peerId: string, category: ErrorCategory, detail: string, at: number }>
  readonly pingFailures: Set<string>
  /** Aborted when the node stops: every wait inside the node listens to it. */
  readonly stopSignal: AbortSignal
  /** The bootstrap this peer is connected to, once connectWithTimeout succeeded, and when. */
  currentBootstrap: string | null
  connectedAt: number | null
  /** Last measured ping round trip per bootstrap address, for fastest-first failover. */
  readonly bootstrapLatency: Map<string, number>
}

export function dhtOf (ctx: NodeContext): SingleKadDHT {
  return ctx.libp2p.services.dht as SingleKadDHT
}

/**
 * kad-dht's routing table as it really is: an event target over a k-bucket. Its public type exposes only `size`,
 * but the plan needs the entries and their arrival.
 */
export interface RoutingTableInternals extends EventTarget {
  readonly size: number
  readonly kb?: { toIterable(): Iterable<{ peerId: { toString(): string } }> }
}

export function routingTableOf (ctx: NodeContext): RoutingTableInternals {
  return dhtOf(ctx).routingTable as unknown as RoutingTableInternals
}

export function routingTablePeers (ctx: NodeContext): string[] {
  const kb = routingTableOf(ctx).kb
  return kb == null ? [] : [...kb.toIterable()].map(p => p.peerId.toString())
}

export function isConnectedTo (ctx: NodeContext, peerId: string): boolean {
  return ctx.libp2p.getConnections().some(c => c.remotePeer.toString() === peerId && c.status === 'open')
}
