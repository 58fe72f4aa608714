import { describe, expect, it } from 'vitest'
import { findToxiproxyBinary } from '../sim/faults/index.ts'
import { measureConnectTimeout, measureMutualVisibility, measureToxiproxyOverhead } from './latency.ts'
import { measureScale } from './scale.ts'
import { renderMarkdown, renderTable } from './table.ts'
import type { BenchResults } from './results.ts'
import { quantile, summarize } from './util.ts'

// Proves the measurement functions produce sane figures at tiny sizes; nothing here asserts a timing target.

const machine: BenchResults['machine'] = { platform: 'linux', arch: 'x64', cpus: 2, cpuModel: 'test', memoryMiB: 1024, node: 'v24', libp2p: 'x', kadDht: 'y' }

describe('bench statistics', () => {
  it('summarizes and interpolates quantiles', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5)
    expect(summarize([]).p50).toBeNull()
    expect(summarize([5, 1, 3])).toMatchObject({ n: 3, min: 1, p50: 3, max: 5, mean: 3 })
  })
})

describe('bench measurements at tiny sizes', () => {
  it('scale: N=5 peers converge and every figure is present', async () => {
    const r = await measureScale({ n: 5, seed: 11, samplePairs: 3, convergeDeadlineMs: 45_000, visibilityWaitMs: 5_000 })
    expect(r.error).toBeUndefined()
    expect(r.unhandled).toEqual([])
    expect(r.converged).toBe(true)
    expect(r.verified).toBe(5)
    expect(r.convergeMs).toBeGreaterThan(0)
    expect(r.cpuToVerifyMs).toBeGreaterThan(0)
    expect(r.verifiedPerCoreMinute).toBeGreaterThan(0)
    expect(r.dhtReadWriteOverloadFailures).toBeLessThanOrEqual(r.dhtReadWriteFailures)
    expect(r.visibility.pairs).toBe(3)
    expect(r.findPeer.pairs).toBe(3)
    expect(r.findPeer.found).toBeGreaterThanOrEqual(1)
    expect(r.resources.peakRssMiB).toBeGreaterThan(10)
    expect(r.resources.cpuMs).toBeGreaterThan(0)
    expect(r.bootstrapRoutingTable).toBe(5)
    expect(r.profile).toBe('kad-dht-defaults')
    expect(renderTable({ schemaVersion: 2, startedAt: 'now', seed: 11, quick: true, argv: [], machine, scale: [r], scaleCommands: { 'kad-dht-defaults/5': 'cmd' }, largestConvergedN: { 'kad-dht-defaults': 5 } })).toContain('scale N=5 [kad-dht-defaults]: all verified')
  }, 90_000)

  it('latency: mutual visibility over 3 runs', async () => {
    const r = await measureMutualVisibility({ runs: 3, seed: 12, initialQuerySelfIntervalMs: 0 })
    expect(r.failures).toEqual([])
    expect(r.samples).toHaveLength(3)
    for (const s of r.samples) expect(s).toBeGreaterThanOrEqual(0)
    expect(r.ms.p50).not.toBeNull()
  }, 60_000)

  it('latency: the connect timeout against a TCP blackhole is reported near its configured value', async () => {
    const r = await measureConnectTimeout({ runs: 2, seed: 13, timeoutMs: 5_000 })
    expect(r.timedOut).toBe(2)
    expect(r.reportedMs.min).toBeGreaterThanOrEqual(5_000)
    expect(r.reportedMs.max).toBeLessThan(7_000)
  }, 30_000)

  it.skipIf(findToxiproxyBinary() == null && process.env.TOXIPROXY_URL == null)('toxiproxy: direct and proxied echo round trips are measured', async () => {
    const r = await measureToxiproxyOverhead({ samples: 100 })
    expect(r.samples).toBe(100)
    expect(r.directMs.p50).toBeGreaterThan(0)
    expect(r.proxiedMs.p50).toBeGreaterThan(0)
    expect(r.addedMedianMs).not.toBeNull()
    const text = renderMarkdown({ schemaVersion: 2, startedAt: 'now', seed: 1, quick: true, argv: [], machine, toxiproxy: r, toxiproxyCommand: 'cmd' })
    expect(text).toContain('RTT added by a clean proxy')
  }, 60_000)
})

describe('verify gate', () => {
  it('halves the verifications in flight after a timed-out one, adds one after a quick one, never exceeds the limit', async () => {
    const { VerifyGate } = await import('./verify-gate.ts')
    const gate = new VerifyGate(4)
    let inFlight = 0
    let peak = 0
    const attempt = (timedOut: boolean) => async () => {
      inFlight++
      peak = Math.max(peak, inFlight)
      await new Promise(resolve => setImmediate(resolve))
      inFlight--
      return { timedOut, ms: timedOut ? 10_000 : 100, deadlineMs: 10_000 }
    }
    await Promise.all(Array.from({ length: 12 }, async () => await gate.run(attempt(false), r => r)))
    expect(peak).toBe(4)
    await gate.run(attempt(true), r => r)
    expect(gate.limit).toBe(2)
    await gate.run(attempt(true), r => r)
    await gate.run(attempt(true), r => r)
    expect(gate.limit).toBe(1)
    expect(gate.lowest).toBe(1)
    peak = 0
    await Promise.all(Array.from({ length: 6 }, async () => await gate.run(attempt(false), r => r)))
    expect(peak).toBeLessThanOrEqual(4)
    expect(gate.limit).toBe(4)
  })
})

describe('newcomer visibility', () => {
  it('ranks a peer by Kademlia distance to the newcomer and names why a pair missed', async () => {
    const { kadRank, missOf } = await import('./newcomers.ts')
    const { privateKeyFromSeed } = await import('../nodes/libp2p.ts')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const ids = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(async s => peerIdFromPrivateKey(await privateKeyFromSeed(`rank-${s}`)).toString()))
    const [newcomer, ...existing] = ids as [string, ...string[]]
    const ranks = existing.map(x => kadRank(newcomer, x, existing))
    expect([...ranks].sort()).toEqual([1, 2, 3, 4])
    expect(missOf({ nx: null, xn: null, conn: null })).toBe('never-in-contact')
    expect(missOf({ nx: 5, xn: null, conn: null })).toBe('newcomer-only')
    expect(missOf({ nx: null, xn: 5, conn: null })).toBe('x-only')
    expect(missOf({ nx: 5, xn: null, conn: 3 })).toBe('connected-not-admitted')
  })

  it('leaves room at the bootstrap for the population and every newcomer of both modes (N + 10 turned 30 of 40 away at N = 1000)', async () => {
    const { benchBootstrapMaxPeers, NEWCOMER_MODES } = await import('./newcomers.ts')
    for (const [n, k] of [[1000, 20], [5000, 50], [10, 0]] as const) expect(benchBootstrapMaxPeers(n, k)).toBeGreaterThan(n + NEWCOMER_MODES.length * k)
  })
})

describe('sharded bench at a tiny size', () => {
  it('shards: N=4 over 2 shards converge, newcomers are measured, CPU and memory come from the shards', async () => {
    const { measureShardScale } = await import('./shards.ts')
    const r = await measureShardScale({ n: 4, shards: 2, seed: 11, deadlineMs: 60_000, newcomers: 2, log: () => {} })
    expect(r.error).toBeUndefined()
    expect(r.verified).toBe(4)
    expect(r.convergeMs).toBeGreaterThan(0)
    expect(r.newcomers?.tried).toBe(2)
    // With N < K every existing peer is among a newcomer's closest; a pair that missed says why.
    for (const pair of r.newcomers?.pairs ?? []) {
      expect(pair.kadRank).toBeLessThanOrEqual(4)
      expect(pair.miss != null).toBe(pair.mutualMs == null)
    }
    // Looking each other up, a newcomer and any peer of a 4-peer network find each other.
    expect(r.newcomerLookups?.mode).toBe('lookup')
    expect(r.newcomerLookups?.mutual).toBe(2)
    for (const pair of r.newcomerLookups?.pairs ?? []) {
      expect(pair.lookup?.newcomerFoundXMs).toBeGreaterThan(0)
      expect(pair.lookup?.xFoundNewcomerMs).toBeGreaterThan(0)
      expect(pair.mutualMs).toBeGreaterThanOrEqual(Math.max(pair.lookup!.newcomerFoundXMs!, pair.lookup!.xFoundNewcomerMs!))
    }
    expect(r.memory.shardPeakRssMiB).toHaveLength(2)
    expect(r.cpu.shardsMs).toBeGreaterThan(0)
    expect(r.verifiedPerCoreMinute).toBeGreaterThan(0)
  }, 120_000)
})
