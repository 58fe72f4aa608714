import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NodeConfigSchema, type NodeConfig, type PlanTiming } from '../../nodes/config.ts'
import { privateKeyFromSeed } from '../../nodes/libp2p.ts'
import { peerIdOfAddr } from '../../nodes/util.ts'
import { freePort } from '../host/free-port.ts'
import { toRealMs } from '../../nodes/timing.ts'
import { expandNames, type NodeSpec, type Scenario } from '../../scenarios/schema.ts'
import { Evidence } from './evidence.ts'
import { externalKind } from './external-kind.ts'
import { FaultState } from './fault-state.ts'
import { Roster } from './roster.ts'
import { IMAGE_PORT, type Backend } from '../backends/backend.ts'

/** A failed expectation that must end the scenario (a `wait` that never held). */
export class ScenarioAbort extends Error {
  override readonly name = 'ScenarioAbort'
}

/**
 * One scenario run: what it runs (scenario, backend, seed, time scale, signal) and its state, split by who owns it:
 * the roster of nodes, the evidence that becomes the scenario record, and the fault state of its links.
 */
export class RunContext {
  readonly scenario: Scenario
  readonly backend: Backend
  readonly seed: number
  readonly timeScale: number
  readonly signal: AbortSignal
  /** The scenario file's folder: relative paths in an external node's command are resolved from here. */
  readonly baseDir: string
  readonly roster = new Roster()
  readonly evidence = new Evidence()
  readonly faultState = new FaultState()
  /** Files shared so far, by the name a `share` step gave them. */
  readonly files = new Map<string, { cid: string, owner: string }>()

  constructor (init: { scenario: Scenario, backend: Backend, seed: number, timeScale: number, signal: AbortSignal, baseDir?: string | undefined }) {
    this.scenario = init.scenario
    this.backend = init.backend
    this.seed = init.seed
    this.timeScale = init.timeScale
    this.signal = init.signal
    this.baseDir = init.baseDir ?? process.cwd()
  }

  /** Plan milliseconds → the milliseconds this run actually waits. */
  scaled (planMs: number): number {
    return toRealMs(planMs, this.timeScale)
  }
}

/**
 * The node configs of a scenario: deterministic identities from the scenario name, the seed and the node name,
 * plan timing with the scenario's overrides and the run's timeScale.
 */
export async function buildNodes (ctx: RunContext, opts: { fixAddresses: boolean }): Promise<void> {
  const { scenario } = ctx
  const bootstrapNames = scenario.nodes.filter(n => n.role === 'bootstrap' || n.role === 'blackhole' || n.role === 'external').map(n => n.name)
  for (const spec of scenario.nodes) {
    const names = expandNames([spec])
    for (const name of names) {
      let config: NodeConfig | undefined
      let peerId: string | undefined
      if (spec.role === 'bootstrap' || spec.role === 'peer') {
        const identitySeed = `${scenario.name}/${ctx.seed}/${name}`
        const timing: Partial<PlanTiming> = { ...scenario.timing, ...spec.timing, timeScale: ctx.timeScale }
        const dht = spec.role === 'peer' ? withExternalDhtProtocol(scenario, spec) : spec.dht
        config = NodeConfigSchema.parse({
          name,
          role: spec.role,
          transport: ctx.backend.transport,
          identitySeed,
          timing,
          ...(dht != null ? { dht } : {}),
          ...(spec.role === 'bootstrap' && spec.maxPeers != null ? { maxPeers: spec.maxPeers } : {}),
          ...(spec.role === 'peer' && spec.agentVersion != null ? { agentVersion: spec.agentVersion } : {}),
          ...(spec.role === 'peer' && spec.autoMonitor != null ? { autoMonitor: spec.autoMonitor } : {}),
          ...(spec.role === 'peer' && spec.autoVerify != null ? { autoVerify: spec.autoVerify } : {})
        })
        peerId = peerIdFromPrivateKey(await privateKeyFromSeed(identitySeed)).toString()
        // Bootstraps always get a fixed address (a never-started one is a closed port); with fault proxies every
        // node does, since each link's proxy forwards to it.
        if (spec.role === 'bootstrap' || opts.fixAddresses) {
          const { listen } = await ctx.backend.place(config, ctx.signal)
          config = { ...config, listen }
        }
      }
      let address = config?.listen?.[0] != null && peerId != null ? `${config.listen[0]}/p2p/${peerId}` : undefined
      if (spec.role === 'external') {
        // One port for the whole run, so a restarted external node comes back where the peers look for it.
        address = spec.multiaddr.includes('{host}') ? spec.multiaddr.replace('{host}', await externalHost(ctx, spec)) : spec.multiaddr
        if (address.includes('{port}')) {
          const port = externalKind(spec, ctx.backend) === 'container' ? IMAGE_PORT : await freePort({ host: /^\/ip4\/([^/]+)/.exec(address)?.[1], signal: ctx.signal })
          address = address.replace('{port}', String(port))
        }
        peerId = peerIdOfAddr(address)
      }
      // Peers default to every bootstrap of the scenario, in declaration order (failover order).
      const bootstrapRefs = spec.role === 'peer' ? spec.bootstraps ?? bootstrapNames : []
      ctx.roster.nodes.set(name, { name, spec, config, bootstrapRefs, peerId, address, state: { phase: 'declared' }, outputs: [] })
    }
  }
}

/**
 * A peer that names no DHT protocol and bootstraps from an external node speaks that node's protocol: the
 * external node was given as "the real network's bootstrap", and a peer on another protocol would never be
 * admitted by it (cause 7). A peer that names a protocol keeps it, so the mismatch can still be reproduced.
 */
function withExternalDhtProtocol (scenario: Scenario, spec: Extract<NodeSpec, { role: 'peer' }>): Extract<NodeSpec, { role: 'peer' }>['dht'] {
  if (spec.dht?.protocol != null) return spec.dht
  const refs = spec.bootstraps ?? scenario.nodes.filter(n => n.role !== 'peer').map(n => n.name)
  const external = scenario.nodes.find((n): n is Extract<NodeSpec, { role: 'external' }> => n.role === 'external' && refs.includes(n.name))
  return external == null ? spec.dht : { ...spec.dht, protocol: external.dhtProtocol }
}

/** A container listens on its own address, a process on this machine where the run's nodes reach it. */
async function externalHost (ctx: RunContext, spec: Extract<NodeSpec, { role: 'external' }>): Promise<string> {
  if (externalKind(spec, ctx.backend) !== 'container') return await ctx.backend.hostAddress(ctx.signal)
  if (ctx.backend.placeImage == null) throw new Error(`external node "${spec.name}" is an image: run the scenario with --mode docker`)
  return await ctx.backend.placeImage(spec.name, ctx.signal)
}
