import { LocalNode } from '../nodes/node.ts'
import type { DhtOptions, NodeConfigInput } from '../nodes/config.ts'
import { prng } from '../sim/seed.ts'
import { pool, ResourceSampler, round, summarize, waitUntil, type Summary } from './util.ts'
import { withDeadline } from '../nodes/util.ts'
import { LagWatch, VerifyGate } from './verify-gate.ts'
import { benchBootstrapMaxPeers, measureNewcomers, NEWCOMER_MODES, type NewcomerResult } from './newcomers.ts'
import { SCALE_PROFILES, type ScaleProfile } from './profiles.ts'

/**
 * The scale bench: N peers and one bootstrap in this process (memory transport).
 *
 * "Verified" here is deliberately narrower than verifyPeerDiscovery, whose peerDialing step dials every discovered
 * peer (O(N) per peer, O(N²) for the population):
 *   verified = bootstrapConnected && routingTablePopulated && dhtReadWrite
 * - bootstrapConnected: connectWithTimeout succeeded and the connection to the bootstrap is open (tracked from the
 *   node's connection:open/close events, no O(N) inspect call);
 * - routingTablePopulated: getDhtRoutingTableSize().size > 0;
 * - dhtReadWrite: testPeerDiscovery (a kad-dht put of discovery-test-<peerId>, read back with get) succeeds.
 */
export const VERIFIED_DEFINITION = 'bootstrapConnected && routingTablePopulated && dhtReadWrite (testPeerDiscovery put+get); peerDialing and fileDiscovery are not part of it (O(N²))'


export interface ScaleOptions {
  n: number
  seed: number
  /** Default `kad-dht-defaults`. */
  profile?: ScaleProfile
  /** Peers dialling the bootstrap at once (default 25). */
  batchSize?: number
  /** Deadline from the first dial until every peer is verified (default 120 s). */
  convergeDeadlineMs?: number
  /** Pairs sampled for mutual visibility and findPeer (default 20, capped by the number of distinct pairs). */
  samplePairs?: number
  /** Wait for the sampled pairs' mutual visibility after convergence (default 10 s). */
  visibilityWaitMs?: number
  /**
   * testPeerDiscovery calls at once (default 4). More only queue on the one event loop: at 16, most puts of a
   * 100-peer run hit the 10 s DHT deadline and were retried, wasting the work already done.
   */
  verifyConcurrency?: number
  /** Health monitor on every peer (default false: it is per-node work that grows with N). */
  autoMonitor?: boolean
  /** Skip the DHT read/write check: verified = bootstrapConnected && routingTablePopulated (for experiments). */
  skipDhtReadWrite?: boolean
  /** Newcomers joining the converged network one at a time, each against a random existing peer (default 0). */
  newcomers?: number
  onProgress?: (msg: string) => void
}

export interface ScaleResult {
  n: number
  seed: number
  profile: ScaleProfile
  dht: Partial<DhtOptions>
  verifiedDefinition: string
  config: { batchSize: number, convergeDeadlineMs: number, verifyConcurrency: number, autoMonitor: boolean, skipDhtReadWrite: boolean }
  startMs: number
  joinMs: number | null
  /** From the first dial until every peer is verified; null when the deadline passed first. */
  convergeMs: number | null
  converged: boolean
  /** This process's CPU from the first node's start until the verification phase ended. */
  cpuToVerifyMs: number
  /** verified ÷ cpuToVerifyMs in minutes. */
  verifiedPerCoreMinute: number
  verified: number
  connectFailures: number
  dhtReadWriteFailures: number
  /** Of those, attempts during which this process's event loop was overloaded (sim/runner/harness-health.ts's rule). */
  dhtReadWriteOverloadFailures: number
  /** verifyConcurrency is the gate's ceiling (bench/verify-gate.ts); the lowest it backed off to. */
  verifyConcurrencyLowest: number
  dhtReadWriteErrors: string[]
  dhtReadWriteMs: Summary
  connectMs: Summary
  verifiedAtMs: Summary
  bootstrapRoutingTable: number
  /** connection:open events seen by the peers (both directions): how much dialling the population did. */
  connectionsOpened: number
  visibility: { pairs: number, mutual: number, share: number, afterJoinMs: Summary }
  findPeer: { pairs: number, found: number, share: number, latencyMs: Summary }
  /** bench/newcomers.ts, passive mode; absent when none were asked for or the population did not all join. */
  newcomers?: NewcomerResult
  /** The same number of newcomers again, in lookup mode (each side looks the other up). */
  newcomerLookups?: NewcomerResult
  resources: ReturnType<ResourceSampler['stop']> & { baselineRssMiB: number, /** (peak − baseline) / N */ rssPerPeerMiB: number, cpuSecondsPerPeer: number }
  unhandled: string[]
  error?: string
}

interface PeerState {
  node: LocalNode
  id: string
  connectedAt: number | null
  bootstrapOpen: boolean
  verifiedAt: number | null
  /** First time this peer discovered each of the watched peer IDs (sampled pairs only). */
  saw: Map<string, number>
}

export async function measureScale (opts: ScaleOptions): Promise<ScaleResult> {
  const n = opts.n
  const batchSize = opts.batchSize ?? 25
  const convergeDeadlineMs = opts.convergeDeadlineMs ?? 120_000
  const verifyConcurrency = opts.verifyConcurrency ?? 4
  const profile = opts.profile ?? 'kad-dht-defaults'
  const dht: Partial<DhtOptions> = SCALE_PROFILES[profile]
  const autoMonitor = opts.autoMonitor ?? false
  const skipDhtReadWrite = opts.skipDhtReadWrite ?? false
  const progress = opts.onProgress ?? (() => {})
  const rand = prng(`scale/${opts.seed}/${n}`)
  const unhandled: string[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(String((err as Error)?.stack ?? err).split('\n').slice(0, 4).join(' | ')) }
  process.on('unhandledRejection', onUnhandled)

  const baselineRss = process.memoryUsage().rss
  const cpu0 = process.cpuUsage()
  const sampler = new ResourceSampler().start()
  const peers: PeerState[] = []
  const result: Partial<ScaleResult> = {}
  let error: string | undefined
  await using stack = new AsyncDisposableStack()
  stack.defer(() => { process.off('unhandledRejection', onUnhandled) })
  try {
    const t0 = performance.now()
    const tag = `s${opts.seed}-n${n}`
    const boot = await LocalNode.start({ name: `boot-${tag}`, role: 'bootstrap', transport: 'memory', identitySeed: `boot/${tag}`, maxPeers: benchBootstrapMaxPeers(n, opts.newcomers ?? 0), dht })
    stack.defer(async () => { await boot.stop().catch(() => {}) })
    const bootAddrs = boot.multiaddrs()
    const bootId = boot.peerId.toString()

    // Sampled pairs: chosen before start so each sampled peer can watch its partner's discovery from the beginning.
    const maxPairs = (n * (n - 1)) / 2
    const pairs: Array<[number, number]> = []
    const seen = new Set<string>()
    while (pairs.length < Math.min(opts.samplePairs ?? 20, maxPairs)) {
      const a = Math.floor(rand() * n)
      const b = Math.floor(rand() * n)
      const key = a < b ? `${a}-${b}` : `${b}-${a}`
      if (a === b || seen.has(key)) continue
      seen.add(key)
      pairs.push([a, b])
    }

    const config = (i: number): NodeConfigInput => ({
      name: `p${i}-${tag}`, role: 'peer', transport: 'memory', identitySeed: `peer/${tag}/${i}`, bootstrapAddrs: bootAddrs, autoMonitor, dht
    })
    // Stopped together, not one after another: at N = 1000 stopping the peers in turn took more than 8 minutes, each
    // stop waiting on its connections' remote ends in the same busy process (bench/RESULTS.md).
    stack.defer(async () => { await pool(peers, 50, async p => { await p.node.stop().catch(() => {}) }) })
    const startBatches = Math.ceil(n / 50)
    for (let b = 0; b < startBatches; b++) {
      const started = await Promise.allSettled(Array.from({ length: Math.min(50, n - b * 50) }, async (_v, k) => await LocalNode.start(config(b * 50 + k))))
      for (const s of started) if (s.status === 'fulfilled') peers.push({ node: s.value, id: s.value.peerId.toString(), connectedAt: null, bootstrapOpen: false, verifiedAt: null, saw: new Map() })
      const failed = started.find(s => s.status === 'rejected')
      if (failed != null) throw (failed as PromiseRejectedResult).reason
    }
    result.startMs = Math.round(performance.now() - t0)
    progress(`N=${n}: ${n} peers started in ${result.startMs} ms`)

    let connectionsOpened = 0
    // Open now, both ends counted: what the population holds (memory connections are never pruned; each costs heap).
    let connectionsOpen = 0
    // Watch the sampled partners and the bootstrap connection, from events (no O(N) state dumps).
    const watched = new Map<number, Set<string>>()
    for (const [a, b] of pairs) {
      if (!watched.has(a)) watched.set(a, new Set())
      if (!watched.has(b)) watched.set(b, new Set())
      watched.get(a)!.add(peers[b]!.id)
      watched.get(b)!.add(peers[a]!.id)
    }
    for (const [i, p] of peers.entries()) {
      const partners = watched.get(i)
      const unsubscribe = p.node.subscribe(ev => {
        if (ev.type === 'connection:open') { connectionsOpened++; connectionsOpen++; if (ev.peerId === bootId) p.bootstrapOpen = true }
        else if (ev.type === 'connection:close') { connectionsOpen--; if (ev.peerId === bootId) p.bootstrapOpen = false }
        else if (ev.type === 'peer:discovered' && partners?.has(ev.peerId) === true && !p.saw.has(ev.peerId)) p.saw.set(ev.peerId, performance.now())
      })
      stack.defer(unsubscribe)
    }

    const tJoin = performance.now()
    const overall = AbortSignal.timeout(convergeDeadlineMs)
    const connectTimes: number[] = []
    let connectFailures = 0
    let dhtFailures = 0
    const dhtErrors: string[] = []
    const dhtLatencies: number[] = []
    const verifyQueue: Array<Promise<void>> = []
    const gate = new VerifyGate(verifyConcurrency)
    const lag = new LagWatch().start()
    stack.defer(() => { lag.stop() })
    let dhtOverloadFailures = 0
    const verify = async (p: PeerState): Promise<void> => {
      const populated = await waitUntil(async () => (await p.node.call('getDhtRoutingTableSize', {})).size > 0, Math.max(0, convergeDeadlineMs - (performance.now() - tJoin)), 100, overall)
      if (!populated) return
      const deadlineMs = p.node.config.timing.dhtQueryTimeoutMs
      let ok = skipDhtReadWrite
      while (!ok && !overall.aborted) {
        const t = performance.now()
        type Attempt = { success: boolean, latencyMs?: number, error?: string }
        const r = await gate.run<Attempt>(
          async () => await p.node.call('testPeerDiscovery', { testContent: 'scale-verify' }, { signal: overall }).catch((err: unknown) => ({ success: false, error: String(err) })),
          r => ({ timedOut: !r.success && (r.latencyMs ?? 0) >= deadlineMs, ms: r.latencyMs ?? 0, deadlineMs }))
        // Past the run's deadline an attempt fails at once: that is the bench stopping, not a failed put.
        if (!r.success && overall.aborted) break
        ok = r.success
        if (r.latencyMs != null) dhtLatencies.push(r.latencyMs)
        if (!ok) {
          dhtFailures++
          const overload = lag.during(t, performance.now())
          if (overload.overloaded) dhtOverloadFailures++
          if (dhtErrors.length < 5) dhtErrors.push(`${r.error ?? 'unknown'}${overload.overloaded ? ` [harness overloaded: ${overload.overloadReason}]` : ''}`)
          // Back off before retrying: an immediate retry only adds load to a saturated event loop.
          await new Promise(resolve => setTimeout(resolve, 1_000))
        }
      }
      if (ok && p.bootstrapOpen) p.verifiedAt = performance.now()
    }

    // Join: batches of dials to the one bootstrap, each with the plan's connect deadline; one retry for failures.
    const connect = async (p: PeerState): Promise<boolean> => {
      const t = performance.now()
      const r = await withDeadline(p.node.call('connectWithTimeout', {}, { signal: overall }), 60_000, 'connectWithTimeout: no answer within 60000 ms').catch(() => ({ success: false }))
      if (!r.success) return false
      p.connectedAt = performance.now()
      connectTimes.push(p.connectedAt - t)
      verifyQueue.push(verify(p))
      return true
    }
    const failed: PeerState[] = []
    for (let b = 0; b < n && !overall.aborted; b += batchSize) {
      const batch = peers.slice(b, b + batchSize)
      const ok = await Promise.all(batch.map(connect))
      batch.forEach((p, k) => { if (ok[k] !== true) failed.push(p) })
      if ((b / batchSize) % 4 === 0) progress(`N=${n}: ${Math.min(n, b + batchSize)} dialled at ${Math.round(performance.now() - tJoin)} ms, ${peers.filter(x => x.verifiedAt != null).length} verified`)
    }
    for (const p of failed) {
      if (overall.aborted || await connect(p)) continue
      connectFailures++
    }
    result.joinMs = connectFailures === 0 ? Math.round(performance.now() - tJoin) : null
    progress(`N=${n}: joined in ${result.joinMs ?? '—'} ms (${connectFailures} failed twice), ${peers.filter(x => x.verifiedAt != null).length} verified`)
    // A long verification phase says how it goes: verified so far, the gate's limit, failures and how many under overload.
    // …and how busy this process was over the last tick: its CPU (both cores count) and its event loop's verdict.
    let tickCpu = process.cpuUsage()
    let tickAt = performance.now()
    const ticker = setInterval(() => {
      const cpu = process.cpuUsage(tickCpu)
      const now = performance.now()
      const busy = lag.during(tickAt, now)
      progress(`N=${n}: ${peers.filter(x => x.verifiedAt != null).length} verified at ${Math.round(now - tJoin)} ms, ${gate.limit} puts at once, ${dhtFailures} failed puts (${dhtOverloadFailures} while overloaded); ${connectionsOpen} connection ends open, heap ${Math.round(process.memoryUsage().heapUsed / 1048576)} MiB; last ${Math.round((now - tickAt) / 1000)} s: CPU ${Math.round((cpu.user + cpu.system) / 10 / (now - tickAt))} %${busy.overloaded ? `, overloaded (${busy.overloadReason})` : ''}`)
      tickCpu = process.cpuUsage()
      tickAt = now
    }, 30_000)
    await Promise.all(verifyQueue).finally(() => { clearInterval(ticker) })
    const verifiedPeers = peers.filter(p => p.verifiedAt != null)
    const converged = verifiedPeers.length === n
    result.convergeMs = converged ? Math.round(Math.max(...verifiedPeers.map(p => p.verifiedAt! - tJoin))) : null
    // CPU up to here (start, join, verification), before the sampled-pair, findPeer and newcomer phases add theirs.
    const cpuToVerify = process.cpuUsage(cpu0)
    result.cpuToVerifyMs = Math.round((cpuToVerify.user + cpuToVerify.system) / 1000)
    result.verifiedPerCoreMinute = round(verifiedPeers.length / Math.max(1e-9, result.cpuToVerifyMs / 60_000), 1)
    progress(`N=${n}: ${verifiedPeers.length}/${n} verified, converge ${result.convergeMs ?? 'not reached'} ms`)

    if (process.env.BENCH_HEAP_SNAPSHOT != null) {
      const { writeHeapSnapshot } = await import('node:v8')
      progress(`heap snapshot: ${writeHeapSnapshot(process.env.BENCH_HEAP_SNAPSHOT)}`)
    }
    // Mutual visibility of the sampled pairs: each side discovered the other (routing table or query result).
    const tVisible = performance.now()
    const mutual = (a: number, b: number): boolean => peers[a]!.saw.has(peers[b]!.id) && peers[b]!.saw.has(peers[a]!.id)
    await waitUntil(() => pairs.every(([a, b]) => mutual(a, b)), opts.visibilityWaitMs ?? 10_000, 250)
    const visibleAfter = pairs.filter(([a, b]) => mutual(a, b)).map(([a, b]) => {
      const pa = peers[a]!
      const pb = peers[b]!
      // From the later of the two joins to the later of the two discoveries.
      const joined = Math.max(pa.connectedAt ?? tJoin, pb.connectedAt ?? tJoin)
      return Math.max(0, Math.max(pa.saw.get(pb.id)!, pb.saw.get(pa.id)!) - joined)
    })
    progress(`N=${n}: ${visibleAfter.length}/${pairs.length} sampled pairs mutually visible (waited ${Math.round(performance.now() - tVisible)} ms)`)

    // findPeer through the DHT, A looks up B (10 s deadline each, dhtQueryTimeoutMs), 10 at once.
    const lookups = await pool(pairs, 10, async ([a, b]) => await peers[a]!.node.call('findPeer', { peerId: peers[b]!.id }).catch(() => ({ found: false, latencyMs: 0 })))
    const found = lookups.filter(l => l.found)
    progress(`N=${n}: findPeer ${found.length}/${pairs.length}`)

    // Newcomers once every peer joined, whether or not all were verified by the deadline (the result says how many
    // were): a joined network is what a newcomer meets. First passive, then as many again looking each other up.
    if ((opts.newcomers ?? 0) > 0 && result.joinMs != null) {
      const count = opts.newcomers!
      for (const mode of NEWCOMER_MODES) {
        const measured = await measureNewcomers({
          count,
          mode,
          existing: peers.map(p => ({ peerId: p.id, handle: p.node })),
          rand,
          start: async i => {
            const node = await LocalNode.start(config(n + (mode === 'passive' ? i : count + i)))
            stack.defer(async () => { await node.stop().catch(() => {}) })
            return { peerId: node.peerId.toString(), handle: node }
          },
          onProgress: msg => { progress(`N=${n}: ${msg}`) }
        })
        if (mode === 'passive') result.newcomers = measured
        else result.newcomerLookups = measured
      }
    }

    Object.assign(result, {
      converged,
      verified: verifiedPeers.length,
      connectFailures,
      dhtReadWriteFailures: dhtFailures,
      dhtReadWriteOverloadFailures: dhtOverloadFailures,
      verifyConcurrencyLowest: gate.lowest,
      dhtReadWriteErrors: dhtErrors,
      dhtReadWriteMs: summarize(dhtLatencies),
      connectMs: summarize(connectTimes.map(x => round(x, 1))),
      verifiedAtMs: summarize(verifiedPeers.map(p => round(p.verifiedAt! - tJoin, 0))),
      connectionsOpened,
      bootstrapRoutingTable: (await boot.call('getDhtRoutingTableSize', {})).size,
      visibility: { pairs: pairs.length, mutual: visibleAfter.length, share: round(visibleAfter.length / Math.max(1, pairs.length)), afterJoinMs: summarize(visibleAfter.map(x => round(x, 0))) },
      findPeer: { pairs: pairs.length, found: found.length, share: round(found.length / Math.max(1, pairs.length)), latencyMs: summarize(found.map(l => l.latencyMs)) }
    })
  } catch (err) {
    error = String((err as Error)?.stack ?? err)
  }
  const resources = sampler.stop()
  const empty = summarize([])
  return {
    n,
    seed: opts.seed,
    profile,
    dht,
    verifiedDefinition: VERIFIED_DEFINITION,
    config: { batchSize, convergeDeadlineMs, verifyConcurrency, autoMonitor, skipDhtReadWrite },
    startMs: result.startMs ?? 0,
    joinMs: result.joinMs ?? null,
    convergeMs: result.convergeMs ?? null,
    converged: result.converged ?? false,
    cpuToVerifyMs: result.cpuToVerifyMs ?? 0,
    verifiedPerCoreMinute: result.verifiedPerCoreMinute ?? 0,
    verified: result.verified ?? 0,
    connectFailures: result.connectFailures ?? n,
    dhtReadWriteFailures: result.dhtReadWriteFailures ?? 0,
    dhtReadWriteOverloadFailures: result.dhtReadWriteOverloadFailures ?? 0,
    verifyConcurrencyLowest: result.verifyConcurrencyLowest ?? verifyConcurrency,
    dhtReadWriteErrors: result.dhtReadWriteErrors ?? [],
    dhtReadWriteMs: result.dhtReadWriteMs ?? empty,
    connectMs: result.connectMs ?? empty,
    verifiedAtMs: result.verifiedAtMs ?? empty,
    bootstrapRoutingTable: result.bootstrapRoutingTable ?? 0,
    connectionsOpened: result.connectionsOpened ?? 0,
    visibility: result.visibility ?? { pairs: 0, mutual: 0, share: 0, afterJoinMs: empty },
    findPeer: result.findPeer ?? { pairs: 0, found: 0, share: 0, latencyMs: empty },
    ...(result.newcomers != null ? { newcomers: result.newcomers } : {}),
    ...(result.newcomerLookups != null ? { newcomerLookups: result.newcomerLookups } : {}),
    resources: { ...resources, baselineRssMiB: round(baselineRss / 1048576, 1), rssPerPeerMiB: round((resources.peakRssMiB - baselineRss / 1048576) / Math.max(1, n), 2), cpuSecondsPerPeer: round(resources.cpuMs / 1000 / Math.max(1, n), 3) },
    unhandled: unhandled.slice(0, 10),
    ...(error != null ? { error } : {})
  }
}
