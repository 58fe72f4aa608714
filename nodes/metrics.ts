import type { CategorizedError, ConnectionAttempt, DhtMetrics } from './schemas.ts'

/** Accumulates the plan's DhtMetrics (Solution #1.6 and #3.11) as the node works. */
export class MetricsRecorder {
  readonly attempts: ConnectionAttempt[] = []
  lastConnectionError: CategorizedError | null = null
  lastPeerDiscoveryTime: number | null = null
  totalPeersDiscovered = 0
  discoveryQueries = 0
  discoveryQueriesSucceeded = 0
  lastSuccessfulDhtWrite: number | null = null
  lastSuccessfulDhtRead: number | null = null
  bootstrapWalkDurationMs: number | null = null

  recordAttempt (attempt: ConnectionAttempt): void {
    this.attempts.push(attempt)
    if (attempt.error != null) this.lastConnectionError = attempt.error
  }

  recordQuery (succeeded: boolean): void {
    this.discoveryQueries++
    if (succeeded) this.discoveryQueriesSucceeded++
  }

  recordDiscovery (at: number): void {
    this.totalPeersDiscovered++
    this.lastPeerDiscoveryTime = at
  }

  snapshot (routingTableSize: number): DhtMetrics {
    return {
      connectionAttempts: [...this.attempts],
      lastConnectionError: this.lastConnectionError,
      lastPeerDiscoveryTime: this.lastPeerDiscoveryTime,
      totalPeersDiscovered: this.totalPeersDiscovered,
      discoveryQueries: this.discoveryQueries,
      discoveryQueriesSucceeded: this.discoveryQueriesSucceeded,
      discoverySuccessRate: this.discoveryQueries === 0 ? null : this.discoveryQueriesSucceeded / this.discoveryQueries,
      kadRoutingTableSize: routingTableSize,
      lastSuccessfulDhtWrite: this.lastSuccessfulDhtWrite,
      lastSuccessfulDhtRead: this.lastSuccessfulDhtRead,
      bootstrapWalkDurationMs: this.bootstrapWalkDurationMs
    }
  }
}
