import { NodeConfigSchema, type DhtOptions, type NodeConfig } from '../nodes/config.ts'
import type { Backend, StartedNode } from '../sim/backends/backend.ts'
import { VerifyGate } from './verify-gate.ts'
import { benchBootstrapMaxPeers, measureNewcomers, NEWCOMER_MODES, type NewcomerResult } from './newcomers.ts'
import { waitUntil } from './util.ts'

/**
 * One bootstrap and N peers on any backend that runs nodes behind their control channels (shards, swarm), driven
 * exactly as a scenario drives them, up to "every peer verified" (POPULATION_VERIFIED_DEFINITION) or the deadline;
 * then newcomers (bench/newcomers.ts), passive and looking each other up. What the backend costs (CPU, memory) is
 * the caller's to read: it knows where its nodes run.
 */
export const POPULATION_VERIFIED_DEFINITION = 'connectWithTimeout succeeded && routingTablePopulated && dhtReadWrite (testPeerDiscovery: a put read back from another peer)'

export interface PopulationResult {
  /** From the bootstrap's start until every peer ran (startBatch at a time). */
  startMs: number
  /** From the first dial until every peer is verified; null when the deadline passed first. */
  convergeMs: number | null
  verified: number
  connectFailures: number
  /** Categories of the connects that failed twice. */
  connectErrors: Record<string, number>
  /** testPeerDiscovery calls that failed (each retried after 1 s), the first few errors, how low the gate backed off. */
  dhtReadWrite: { failures: number, errors: string[], concurrencyLowest?: number }
  /** bench/newcomers.ts, passive mode; absent when none were asked for or the population did not converge. */
  newcomers?: NewcomerResult
  /** The same number of newcomers again, in lookup mode (each side looks the other up). */
  newcomerLookups?: NewcomerResult
}

export async function runPopulation (opts: {
  backend: Backend
  n: number
  /** Names and identities: the same tag and index give the same peer ID in every run. */
  tag: string
  deadlineMs: number
  newcomers: number
  /** testPeerDiscovery calls at once at most (bench/verify-gate.ts backs off from it). */
  verifyCeiling: number
  rand: () => number
  signal: AbortSignal
  log: (m: string) => void
  /** Called once the bootstrap runs, before any peer starts (the shards bench reads an idle shard's memory then). */
  afterBootstrap?: () => void
  /** Called once every verification has ended, before the newcomers: what the population cost is read then. */
  afterVerified?: () => void
  /** Nodes started at once (default 50; containers on vfs storage want fewer: each copies the image). */
  startBatch?: number
  /** DHT settings of every node, the bootstrap's and the newcomers' included (bench/profiles.ts). */
  dht?: Partial<DhtOptions>
}): Promise<PopulationResult> {
  const { backend, n, tag, deadlineMs, signal, log } = opts
  const bootConfig = NodeConfigSchema.parse({ name: `boot-${tag}`, role: 'bootstrap', transport: 'tcp', identitySeed: `boot/${tag}`, maxPeers: benchBootstrapMaxPeers(n, opts.newcomers), dht: opts.dht ?? {} })
  const { listen } = await backend.place(bootConfig, signal)
  const t0 = performance.now()
  const boot = await backend.startNode({ ...bootConfig, listen } as NodeConfig, signal)
  opts.afterBootstrap?.()
  const bootAddrs = [`${listen[0]}/p2p/${boot.peerId}`]
  const peerConfig = (i: number): NodeConfig => NodeConfigSchema.parse({
    name: `p${i}-${tag}`, role: 'peer', transport: 'tcp', identitySeed: `peer/${tag}/${i}`, bootstrapAddrs: bootAddrs, autoMonitor: false, dht: opts.dht ?? {}
  })
  const peers: Array<{ node: StartedNode, verified: boolean }> = []
  const startBatch = opts.startBatch ?? 50
  for (let b = 0; b < n; b += startBatch) {
    const started = await Promise.all(Array.from({ length: Math.min(startBatch, n - b) }, async (_v, k) => await backend.startNode(peerConfig(b + k), signal)))
    for (const node of started) peers.push({ node, verified: false })
  }
  const startMs = Math.round(performance.now() - t0)
  log(`N=${n}: ${n} peers started in ${startMs} ms`)

  const tJoin = performance.now()
  const overall = AbortSignal.any([AbortSignal.timeout(deadlineMs), signal])
  let connectFailures = 0
  let dhtFailures = 0
  const dhtErrors: string[] = []
  let lastVerifiedAt = 0
  const gate = new VerifyGate(opts.verifyCeiling)
  const deadlineOfPut = peerConfig(0).timing.dhtQueryTimeoutMs
  const verify = async (p: typeof peers[number]): Promise<void> => {
    const populated = await waitUntil(async () => (await p.node.handle.call('getDhtRoutingTableSize', {}, { signal: overall }).catch(() => ({ size: 0 }))).size > 0, Math.max(0, deadlineMs - (performance.now() - tJoin)), 100, overall)
    while (populated && !overall.aborted) {
      type Attempt = { success: boolean, latencyMs?: number, error?: string }
      const r = await gate.run<Attempt>(
        async () => await p.node.handle.call('testPeerDiscovery', { testContent: 'population-verify' }, { signal: overall }).catch((err: unknown) => ({ success: false, error: String(err) })),
        r => ({ timedOut: !r.success && (r.latencyMs ?? 0) >= deadlineOfPut, ms: r.latencyMs ?? 0, deadlineMs: deadlineOfPut }))
      // Past the run's deadline an attempt fails at once: that is the bench stopping, not a failed put.
      if (!r.success && overall.aborted) break
      if (r.success) { p.verified = true; lastVerifiedAt = performance.now() - tJoin; break }
      dhtFailures++
      if (dhtErrors.length < 5) dhtErrors.push(r.error ?? 'unknown')
      await new Promise(resolve => setTimeout(resolve, 1_000))
    }
  }
  const verifications: Array<Promise<void>> = []
  const connectErrors = new Map<string, number>()
  // Join: batches of dials to the one bootstrap, as bench/scale.ts does; a failed connect is tried once more after
  // the batches (a busy bootstrap under load), and what failed twice is counted with its category.
  const connect = async (p: typeof peers[number], last: boolean): Promise<boolean> => {
    const r: { success: boolean, error?: { category: string } | undefined } = await p.node.handle.call('connectWithTimeout', {}, { signal: overall }).catch(() => ({ success: false, error: { category: 'no answer' } }))
    if (r.success) verifications.push(verify(p))
    else if (last) connectErrors.set(r.error?.category ?? 'failed', (connectErrors.get(r.error?.category ?? 'failed') ?? 0) + 1)
    return r.success
  }
  const retry: typeof peers = []
  for (let b = 0; b < n && !overall.aborted; b += 25) {
    const batch = peers.slice(b, b + 25)
    await Promise.all(batch.map(async p => { if (!await connect(p, false)) retry.push(p) }))
    if ((b / 25) % 4 === 0) log(`N=${n}: ${Math.min(n, b + 25)} dialled at ${Math.round(performance.now() - tJoin)} ms, ${peers.filter(p => p.verified).length} verified`)
  }
  for (const p of retry) if (!overall.aborted && !await connect(p, true)) connectFailures++
  await Promise.all(verifications)
  opts.afterVerified?.()
  const verified = peers.filter(p => p.verified).length
  const convergeMs = verified === n ? Math.round(lastVerifiedAt) : null
  log(`N=${n}: ${verified}/${n} verified, converge ${convergeMs ?? 'not reached'} ms`)
  const result: PopulationResult = {
    startMs,
    convergeMs,
    verified,
    connectFailures,
    connectErrors: Object.fromEntries(connectErrors),
    dhtReadWrite: { failures: dhtFailures, errors: dhtErrors, concurrencyLowest: gate.lowest }
  }

  // Newcomers: each joins the converged network against a seeded random existing peer (bench/newcomers.ts),
  // first passive, then as many again looking each other up.
  if (verified === n && opts.newcomers > 0) {
    for (const mode of NEWCOMER_MODES) {
      const measured = await measureNewcomers({
        count: opts.newcomers,
        mode,
        existing: peers.map(p => ({ peerId: p.node.peerId, handle: p.node.handle })),
        rand: opts.rand,
        start: async i => {
          const node = await backend.startNode(peerConfig(n + (mode === 'passive' ? i : opts.newcomers + i)), signal)
          return { peerId: node.peerId, handle: node.handle }
        },
        onProgress: m => { log(`N=${n}: ${m}`) }
      })
      if (mode === 'passive') result.newcomers = measured
      else result.newcomerLookups = measured
    }
  }
  return result
}
