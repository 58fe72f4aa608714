/**
 * The one rule for time. A scenario states durations in plan time (the plan's real-world figures: a 30 s health
 * check, a 2 min alert); `timeScale` compresses them into the real milliseconds a run waits. Nodes, the supervisor,
 * the runner and the reports convert with these two functions and nothing else.
 *
 * Some quantities are never scaled, because compressing them would change what they measure rather than how long
 * a run takes; they are listed in UNSCALED below (with why), once.
 */

/** Plan milliseconds → the real milliseconds a run at `timeScale` waits. Never 0: a 0 ms timer is "at once". */
export function toRealMs (planMs: number, timeScale: number): number {
  return Math.max(1, Math.round(planMs * timeScale))
}

/** Real milliseconds measured in a run at `timeScale` → the plan-time duration they stand for. */
export function toPlanMs (realMs: number, timeScale: number): number {
  return Math.round(realMs / timeScale)
}

/**
 * Quantities in milliseconds that are real time whatever the timeScale, by name as they appear in the configs
 * (nodes/config.ts, nodes/supervisor/config.ts, scenarios/schema.ts).
 */
export const UNSCALED = {
  healthyLatencyMs: 'a latency threshold compares a measured round trip, which time compression does not shorten',
  degradedLatencyMs: 'a latency threshold compares a measured round trip, which time compression does not shorten',
  healthPingTimeoutMs: 'the plan\'s 5 s ping deadline bounds a measurement: a compressed deadline would call a merely slow bootstrap unreachable (peers and supervisor alike)',
  pingTimeoutMs: 'the supervisor\'s copy of the 5 s ping deadline (same reason as healthPingTimeoutMs)',
  discoveryVerificationDelayMs: 'waits for libp2p\'s own Kademlia admission, which is not compressible (it ends early once the routing table has an entry)',
  bidirectionalDiscoveryTimeoutMs: 'Test 3\'s 15 s bounds real discovery work (dials, identify, admission): compressed to 1.5 s it became a load test that flaked on a busy runner',
  withinMs: 'a waitBidirectional step\'s bound is Test 3\'s real-time 15 s (see bidirectionalDiscoveryTimeoutMs)',
  dhtQueryTimeoutMs: 'bounds real network work (a DHT query) that compressed time does not make faster',
  peerDialTimeoutMs: 'bounds a real dial',
  restartTimeoutMs: 'starting a process or a container takes the same real time at any timeScale',
  toleranceMs: 'a scenario\'s tolerance absorbs machine jitter, which is real time'
} as const satisfies Record<string, string>

export type UnscaledQuantity = keyof typeof UNSCALED
