import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeConfigSchema, scaled, type NodeConfig, type NodeConfigInput } from './config.ts'
import { dispatch, type CallOptions, type CommandHandlers, type CommandName, type CommandRequest, type CommandResponse, type NodeHandle } from './commands.ts'
import { trackIdentify } from './admission.ts'
import { connectWithTimeout } from './connect.ts'
import { dhtOf, routingTableOf, routingTablePeers, type NodeContext } from './context.ts'
import * as discovery from './discovery.ts'
import { testPeerDiscovery } from './dht-read-write.ts'
import { EventLog, type NodeEventListener } from './events.ts'
import { FileStore } from './files.ts'
import { checkBootstrapHealth } from './health/check.ts'
import { BootstrapMonitor } from './health/monitor.ts'
import { handleHello } from './hello.ts'
import { ADDRESS_MAPPERS, createChiralLibp2p } from './libp2p.ts'
import { MetricsRecorder } from './metrics.ts'
import type { NodeInfo, NodeInspection } from './schemas.ts'
import { peerIdOfAddr } from './util.ts'

/** A dependency's installed version; its package.json is not exported, so find it from the entry point. */
function packageVersion (name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve(name)))
  while (dir !== path.dirname(dir)) {
    const file = path.join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === name) return pkg.version ?? 'unknown'
    }
    dir = path.dirname(dir)
  }
  return 'unknown'
}

export const VERSIONS = {
  node: process.versions.node,
  libp2p: packageVersion('libp2p'),
  kadDht: packageVersion('@libp2p/kad-dht')
}

/**
 * A bootstrap or peer node running in this process. It is its own NodeHandle: the harness calls it exactly as it
 * calls a node in another process through the control channel.
 */
export class LocalNode implements NodeHandle, AsyncDisposable {
  readonly name: string
  readonly role: 'bootstrap' | 'peer'
  readonly config: NodeConfig
  readonly log: EventLog
  readonly handlers: CommandHandlers
  readonly #ctx: NodeContext
  readonly #stop = new AbortController()
  readonly #monitor: BootstrapMonitor
  readonly #files: FileStore
  #busyRefusals = 0
  #stopped = false
  #failingOver = false

  static async start (input: NodeConfigInput): Promise<LocalNode> {
    const config = NodeConfigSchema.parse(input)
    const libp2p = await createChiralLibp2p(config)
    const node = new LocalNode(config, libp2p)
    try {
      await node.#start()
    } catch (err) {
      await Promise.resolve(libp2p.stop()).catch(() => {})
      throw err
    }
    return node
  }

  private constructor (config: NodeConfig, libp2p: NodeContext['libp2p']) {
    this.name = config.name
    this.role = config.role
    this.config = config
    this.log = new EventLog(config.name)
    this.#ctx = {
      config,
      timing: scaled(config.timing),
      libp2p,
      log: this.log,
      metrics: new MetricsRecorder(),
      bootstrapPeerIds: new Set(config.bootstrapAddrs.map(peerIdOfAddr).filter((p): p is string => p != null)),
      discovered: new Map(),
      dialFailures: [],
      pingFailures: new Set(),
      stopSignal: this.#stop.signal,
      currentBootstrap: null,
      connectedAt: null,
      bootstrapLatency: new Map()
    }
    this.#monitor = new BootstrapMonitor({
      timing: this.#ctx.timing,
      check: async (address, signal) => await checkBootstrapHealth(this.#ctx, address, signal),
      emit: body => {
        this.log.emit(body)
        if (body.type === 'health:status' && body.to === 'red') this.#failover(body.address)
      }
    })
    this.#files = new FileStore(this.#ctx)
    this.handlers = this.#handlers()
  }

  get peerId (): PeerId {
    return this.#ctx.libp2p.peerId
  }

  multiaddrs (): string[] {
    return this.#ctx.libp2p.getMultiaddrs().map(String)
  }

  async call<C extends CommandName>(command: C, request: CommandRequest<C>, options: CallOptions = {}): Promise<CommandResponse<C>> {
    return await dispatch(this.role, this.handlers, command, request, options)
  }

  subscribe (listener: NodeEventListener, from = 0): () => void {
    for (const ev of this.log.since(from)) listener(ev)
    return this.log.subscribe(listener)
  }

  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#monitor.stop()
    this.#stop.abort()
    await this.#ctx.libp2p.stop()
    this.log.emit({ type: 'node:stopped' })
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.stop()
  }

  async #start (): Promise<void> {
    const { libp2p, log, metrics } = this.#ctx
    const table = routingTableOf(this.#ctx)
    table.addEventListener('peer:add', (ev) => {
      const peerId = (ev as CustomEvent<PeerId>).detail.toString()
      log.emit({ type: 'routing:add', peerId, size: table.size })
      this.#discovered(peerId, 'routing-table')
      if (this.#ctx.connectedAt != null && metrics.bootstrapWalkDurationMs == null) {
        metrics.bootstrapWalkDurationMs = Date.now() - this.#ctx.connectedAt
        log.emit({ type: 'dht:walk', durationMs: metrics.bootstrapWalkDurationMs, routingTableSize: table.size })
      }
    })
    table.addEventListener('peer:remove', (ev) => {
      log.emit({ type: 'routing:remove', peerId: (ev as CustomEvent<PeerId>).detail.toString(), size: table.size })
    })
    trackIdentify(libp2p)
    libp2p.addEventListener('peer:discovery', (ev) => { this.#discovered(ev.detail.id.toString(), 'query') })
    libp2p.addEventListener('connection:open', (ev) => {
      const c = ev.detail
      log.emit({ type: 'connection:open', peerId: c.remotePeer.toString(), remoteAddr: c.remoteAddr.toString(), direction: c.direction })
    })
    libp2p.addEventListener('connection:close', (ev) => {
      const c = ev.detail
      log.emit({ type: 'connection:close', peerId: c.remotePeer.toString(), remoteAddr: c.remoteAddr.toString() })
    })
    if (this.role === 'bootstrap') {
      await handleHello(libp2p, this.config.maxPeers, this.config.dht.protocol, (peerId, peers) => {
        this.#busyRefusals++
        log.emit({ type: 'bootstrap:busy', peerId, connectedPeers: peers, maxPeers: this.config.maxPeers })
      })
    } else {
      await this.#files.start()
    }
    await libp2p.start()
    await this.#keepRoutes()
    log.emit({ type: 'node:started', peerId: libp2p.peerId.toString(), multiaddrs: this.multiaddrs() })
  }

  /**
   * Keeps each routed peer reachable by its proxied address. Identify replaces a peer's addresses with the ones it
   * announces (its real ones, which the gater refuses), so the route is put back after every peer-store update.
   */
  async #keepRoutes (): Promise<void> {
    const { libp2p } = this.#ctx
    const routes = new Map(this.config.network.routes.map(r => [r.peerId, r.addrs.map(a => multiaddr(a))]))
    if (routes.size === 0) return
    const restore = async (peerId: string): Promise<void> => {
      const addrs = routes.get(peerId)
      if (addrs == null || this.#stopped) return
      const id = peerIdFromString(peerId)
      const known = await libp2p.peerStore.get(id).then(p => p.addresses.map(a => a.multiaddr.toString())).catch(() => [] as string[])
      const missing = addrs.filter(a => !known.includes(a.toString()))
      if (missing.length > 0) await libp2p.peerStore.merge(id, { multiaddrs: missing }).catch(() => {})
    }
    libp2p.addEventListener('peer:update', (ev) => { void restore(ev.detail.peer.id.toString()) })
    for (const peerId of routes.keys()) await restore(peerId)
  }

  #discovered (peerId: string, source: 'routing-table' | 'query'): void {
    const ctx = this.#ctx
    if (ctx.discovered.has(peerId) || peerId === ctx.libp2p.peerId.toString()) return
    const now = Date.now()
    ctx.discovered.set(peerId, now)
    if (ctx.bootstrapPeerIds.has(peerId)) return
    ctx.metrics.recordDiscovery(now)
    ctx.log.emit({ type: 'peer:discovered', peerId, source })
  }

  #handlers (): CommandHandlers {
    const ctx = this.#ctx
    return {
      info: async () => this.#info(),
      inspect: async () => this.#inspect(),
      connectWithTimeout: async (req, { signal }) => {
        const result = await connectWithTimeout(ctx, req, signal)
        if (result.success && result.bootstrap != null) this.#afterConnect(result.bootstrap)
        return result
      },
      checkBootstrapHealth: async (req, { signal }) => {
        const address = req.address ?? ctx.currentBootstrap ?? ctx.config.bootstrapAddrs[0]
        if (address == null) throw new Error('no bootstrap address: connect first or pass "address"')
        // A check of the monitored bootstrap feeds the monitor's history, as the plan's on-demand check does.
        const monitored = this.#monitor.state()
        if (monitored.running && monitored.address === address) return await this.#monitor.checkNow(signal)
        return await checkBootstrapHealth(ctx, address, signal)
      },
      startHealthMonitoring: async (req) => {
        const address = req.address ?? ctx.currentBootstrap ?? ctx.config.bootstrapAddrs[0]
        if (address == null) throw new Error('no bootstrap address: connect first or pass "address"')
        this.#monitor.start(address)
        return this.#monitor.state()
      },
      stopHealthMonitoring: async () => { this.#monitor.stop(); return this.#monitor.state() },
      getHealth: async () => this.#monitor.state(),
      getDhtRoutingTableSize: async () => discovery.routingTableSize(ctx),
      refreshRoutingTable: async (_req, { signal }) => {
        await dhtOf(ctx).refreshRoutingTable({ signal: AbortSignal.any([ctx.stopSignal, AbortSignal.timeout(ctx.timing.dhtQueryTimeoutMs), ...(signal != null ? [signal] : [])]) })
        return discovery.routingTableSize(ctx)
      },
      testPeerDiscovery: async (req, { signal }) => await testPeerDiscovery(ctx, req.testContent, signal),
      listDiscoveredPeerIds: async () => ({ peerIds: discovery.listDiscoveredPeerIds(ctx) }),
      verifyPeerReachable: async (req, { signal }) => await discovery.verifyPeerReachable(ctx, req.peerId, signal, req.fresh),
      findPeer: async (req, { signal }) => await discovery.findPeer(ctx, req.peerId, signal, req.via),
      getProviderRecords: async (req, { signal }) => ({ providers: await discovery.getProviderRecords(ctx, req.cid, signal) }),
      provide: async (req, { signal }) => await discovery.provide(ctx, req.cid, signal),
      shareFile: async (req, { signal }) => await this.#files.share(req.name, Buffer.from(req.contentBase64, 'base64'), signal),
      downloadFile: async (req, { signal }) => await this.#files.download(req.cid, req.provider, signal),
      verifyPeerDiscovery: async (_req, { signal }) => await discovery.verifyPeerDiscovery(ctx, this.#files.cids(), signal),
      waitForBidirectionalDiscovery: async (req, { signal }) => await discovery.waitForBidirectionalDiscovery(ctx, req, signal),
      getMetrics: async () => ctx.metrics.snapshot(dhtOf(ctx).routingTable.size),
      shutdown: async () => {
        // Answer first, then stop: the caller is usually talking to us over the connection we are about to close.
        setImmediate(() => { void this.stop() })
        return { ok: true as const }
      }
    }
  }

  /** Mid-session failover: the monitored bootstrap went red, so try the others (the failed one last). */
  #failover (failed: string): void {
    const others = this.config.bootstrapAddrs.filter(a => a !== failed)
    if (!this.config.autoFailover || others.length === 0 || this.#failingOver || this.#stopped) return
    this.#failingOver = true
    this.log.emit({ type: 'log', level: 'warn', message: `Bootstrap unreachable - trying ${others.length} other bootstrap(s)` })
    void connectWithTimeout(this.#ctx, { bootstrapAddrs: [...others, failed] })
      .then(result => { if (result.success && result.bootstrap != null && result.bootstrap !== failed) this.#afterConnect(result.bootstrap) })
      .catch(() => {})
      .finally(() => { this.#failingOver = false })
  }

  #afterConnect (bootstrap: string): void {
    this.log.emit({ type: 'discovery:phase', phase: 'populating', message: 'Populating peer routing table...' })
    if (this.config.autoMonitor) this.#monitor.start(bootstrap)
    this.#watchAdmission(bootstrap)
    if (this.config.autoVerify) {
      const t = setTimeout(() => {
        void discovery.verifyPeerDiscovery(this.#ctx, this.#files.cids()).catch(() => {})
      }, this.#ctx.timing.discoveryVerificationDelayMs)
      this.#stop.signal.addEventListener('abort', () => { clearTimeout(t) }, { once: true })
    }
  }

  /**
   * kad-dht admits a new contact after one ping and never tries again: when that ping fails (a bootstrap that
   * accepts two concurrent ping streams per connection, already busy with our health check and the connection
   * monitor's), the bootstrap stays out of the routing table for good, no walk ever runs, and nothing says why.
   * So, once libp2p's own admission has had its time, a bootstrap that serves our DHT and is still missing is
   * admitted again, saying so; one that still cannot be admitted is named with the reason.
   */
  #watchAdmission (bootstrap: string): void {
    const ctx = this.#ctx
    const id = peerIdOfAddr(bootstrap)
    if (id == null) return
    const t = setTimeout(() => {
      void (async () => {
        if (this.#stopped || routingTablePeers(ctx).includes(id)) return
        const peerId = peerIdFromString(id)
        const known = await ctx.libp2p.peerStore.get(peerId).catch(() => undefined)
        if (known?.protocols.includes(this.config.dht.protocol) !== true) return
        const waited = ctx.timing.discoveryVerificationDelayMs
        this.log.emit({ type: 'log', level: 'warn', message: `kad-dht did not admit the bootstrap ${id} to its routing table within ${waited} ms of connecting (its one admission ping failed?): admitting it again` })
        await (routingTableOf(ctx) as unknown as { add: (p: PeerId, o?: { signal?: AbortSignal }) => Promise<void> }).add(peerId, { signal: AbortSignal.any([this.#stop.signal, AbortSignal.timeout(ctx.timing.healthPingTimeoutMs)]) }).catch(() => {})
        if (!this.#stopped && !routingTablePeers(ctx).includes(id)) {
          this.log.emit({ type: 'log', level: 'error', message: `the bootstrap ${id} is still not in the routing table: it does not answer kad-dht's admission ping on ${'/' + this.config.dht.pingProtocolPrefix}/ping/1.0.0 (no walk can start without it)` })
        }
      })().catch(() => {})
    }, ctx.timing.discoveryVerificationDelayMs)
    this.#stop.signal.addEventListener('abort', () => { clearTimeout(t) }, { once: true })
  }

  #info (): NodeInfo {
    return {
      name: this.name,
      role: this.role,
      peerId: this.peerId.toString(),
      multiaddrs: this.multiaddrs(),
      dhtProtocol: this.config.dht.protocol,
      versions: VERSIONS
    }
  }

  async #inspect (): Promise<NodeInspection> {
    const ctx = this.#ctx
    const mapper = ADDRESS_MAPPERS[this.config.dht.addressMapper]
    const peers = await ctx.libp2p.peerStore.all()
    return {
      name: this.name,
      role: this.role,
      peerId: this.peerId.toString(),
      running: !this.#stopped,
      multiaddrs: this.multiaddrs(),
      dhtMode: dhtOf(ctx).getMode(),
      dhtProtocol: this.config.dht.protocol,
      addressMapper: this.config.dht.addressMapper,
      protocols: ctx.libp2p.getProtocols(),
      routingTable: routingTablePeers(ctx),
      connections: ctx.libp2p.getConnections().map(c => ({
        peerId: c.remotePeer.toString(),
        remoteAddr: c.remoteAddr.toString(),
        direction: c.direction,
        status: c.status,
        limited: c.limits != null,
        openedAt: c.timeline.open
      })),
      knownPeers: peers.map(p => {
        const addresses = p.addresses.map(a => a.multiaddr)
        return {
          peerId: p.id.toString(),
          addresses: addresses.map(String),
          mappedAddresses: mapper({ id: p.id, multiaddrs: addresses }).multiaddrs.map(String),
          protocols: [...p.protocols],
          identified: p.protocols.length > 0
        }
      }),
      discoveredPeerIds: discovery.listDiscoveredPeerIds(ctx),
      pingFailures: [...ctx.pingFailures],
      busyRefusals: this.#busyRefusals,
      dialFailures: [...ctx.dialFailures]
    }
  }
}

export async function startNode (input: NodeConfigInput): Promise<LocalNode> {
  return await LocalNode.start(input)
}
