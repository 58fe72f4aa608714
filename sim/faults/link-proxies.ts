import { randomBytes } from 'node:crypto'
import { toxiproxyRequest, ToxiproxyApiError } from './api.ts'
import { parsePrometheusText, proxyByteCounts, type DirectionBytes } from './metrics.ts'
import { parseToxicSpec, toxicAttributes, type ToxicSpec, type ToxicSpecInput } from '../../scenarios/toxic-spec.ts'
import type { ToxiproxyServer } from './toxiproxy-server.ts'

/**
 * Faults are attached to links, not nodes: one Toxiproxy proxy per link, in front of the link's upstream (the
 * listening node). A fault only works if the dialer really dials `listen` — see bypass.ts for the check that it did.
 */

export interface HostPort {
  host: string
  port: number
}

export interface LinkBytes extends DirectionBytes {
  /**
   * Bytes that reached the proxy, per direction. `upstream`/`downstream` above count what the proxy delivered;
   * the two differ when a toxic held or cut the traffic (timeout, limit_data, reset_peer).
   */
  received: DirectionBytes
}

export interface ActiveToxic {
  name: string
  spec: ToxicSpec
}

export interface Link {
  /** The harness's name for the link, e.g. "peer3->boot". */
  readonly name: string
  /** The proxy's name on the server: run id + link name, unique across concurrent runs. */
  readonly proxyName: string
  /** Where the dialer must connect for the link's faults to apply. */
  readonly listen: HostPort
  readonly upstream: HostPort
  /** Validates the spec (throws naming the bad field) and adds it; returns the toxic's name. */
  addToxic (spec: ToxicSpecInput): Promise<string>
  removeToxic (name: string): Promise<void>
  /** Removes every toxic this link added. */
  clearToxics (): Promise<void>
  /** Disabled = "down": the proxy stops listening (new dials get ECONNREFUSED) and drops open connections. */
  setEnabled (enabled: boolean): Promise<void>
  /**
   * Bytes the proxy carried, from Toxiproxy's counters. They are credited when a connection closes, so traffic
   * of a connection that is still open is not counted yet: read this after the link's connections ended.
   */
  bytes (): Promise<LinkBytes>
  /** Toxics currently applied through this handle. */
  toxics (): ActiveToxic[]
}

export interface LinkProxiesOptions {
  /** Prefix of every proxy name; default: a fresh random id, so two runs on one server never clash. */
  runId?: string
  /** Deadline of each Toxiproxy API call (default 5 s). */
  requestTimeoutMs?: number
  /** The address proxies listen on, reachable by the nodes (default 127.0.0.1; a bridge gateway for containers). */
  listenHost?: string
}

/** Toxiproxy names appear in URL paths and metric labels; keep them to a safe alphabet. */
function sanitize (name: string): string {
  const s = name.replace(/[^A-Za-z0-9._-]+/g, '_')
  return s === '' ? 'link' : s
}

function formatHostPort ({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

function parseHostPort (text: string): HostPort {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(text)
  if (m == null) throw new Error(`unexpected address from Toxiproxy: ${text}`)
  return { host: m[1] as string, port: Number(m[2]) }
}

export function newRunId (): string {
  return `chiral-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
}

class ProxiedLink implements Link {
  readonly name: string
  readonly proxyName: string
  readonly listen: HostPort
  readonly upstream: HostPort
  private readonly owner: LinkProxies
  private readonly active = new Map<string, ToxicSpec>()
  private toxicCounter = 0

  constructor (owner: LinkProxies, name: string, proxyName: string, listen: HostPort, upstream: HostPort) {
    this.owner = owner
    this.name = name
    this.proxyName = proxyName
    this.listen = listen
    this.upstream = upstream
  }

  private get path (): string {
    return `/proxies/${encodeURIComponent(this.proxyName)}`
  }

  async addToxic (input: ToxicSpecInput): Promise<string> {
    const spec = parseToxicSpec(input)
    // Toxiproxy names a toxic "<type>_<stream>" by default and refuses a second one with the same name (409),
    // so two latency toxics on one stream need names of their own.
    const name = `${spec.type}-${spec.stream}-${++this.toxicCounter}`
    await this.owner.request('POST', `${this.path}/toxics`, {
      name, type: spec.type, stream: spec.stream, toxicity: spec.toxicity, attributes: toxicAttributes(spec)
    })
    this.active.set(name, spec)
    return name
  }

  async removeToxic (name: string): Promise<void> {
    try {
      await this.owner.request('DELETE', `${this.path}/toxics/${encodeURIComponent(name)}`)
    } catch (err) {
      if (err instanceof ToxiproxyApiError && err.status === 404) {
        this.active.delete(name)
        throw new Error(`link ${this.name}: no toxic named ${name} (active: ${[...this.active.keys()].join(', ') || 'none'})`, { cause: err })
      }
      throw err
    }
    this.active.delete(name)
  }

  async clearToxics (): Promise<void> {
    for (const name of [...this.active.keys()]) await this.removeToxic(name)
  }

  async setEnabled (enabled: boolean): Promise<void> {
    // PATCH: 2.12 still takes POST here but logs it as deprecated.
    await this.owner.request('PATCH', this.path, { enabled })
  }

  async bytes (): Promise<LinkBytes> {
    const counts = proxyByteCounts(parsePrometheusText(await this.owner.metricsText()), this.proxyName)
    return { ...counts.sent, received: counts.received }
  }

  toxics (): ActiveToxic[] {
    return [...this.active].map(([name, spec]) => ({ name, spec }))
  }
}

export class LinkProxies implements AsyncDisposable {
  readonly server: ToxiproxyServer
  readonly runId: string
  private readonly requestTimeoutMs: number
  private readonly listenHost: string
  private readonly byName = new Map<string, ProxiedLink>()
  private readonly proxyNames = new Set<string>()

  constructor (server: ToxiproxyServer, opts: LinkProxiesOptions = {}) {
    this.server = server
    this.runId = sanitize(opts.runId ?? newRunId())
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 5_000
    this.listenHost = opts.listenHost ?? '127.0.0.1'
  }

  /** @internal used by the links */
  async request (method: string, path: string, body?: unknown): Promise<unknown> {
    return await toxiproxyRequest(this.server.url, method, path, body, { timeoutMs: this.requestTimeoutMs })
  }

  /** @internal */
  async metricsText (): Promise<string> {
    try {
      return await toxiproxyRequest(this.server.url, 'GET', '/metrics', undefined, { timeoutMs: this.requestTimeoutMs, text: true }) as string
    } catch (err) {
      if (err instanceof ToxiproxyApiError && err.status === 404) {
        throw new Error(
          `the Toxiproxy server at ${this.server.url} has no /metrics endpoint, so link byte counts are unavailable: ` +
          'start it with -proxy-metrics (the harness does this for the servers it starts)', { cause: err }
        )
      }
      throw err
    }
  }

  /** Creates the link's proxy on the listen host at a port Toxiproxy picks (no window for another process to take it). */
  async createLink (name: string, upstream: HostPort): Promise<Link> {
    if (this.byName.has(name)) throw new Error(`link ${name} already exists in run ${this.runId}`)
    let proxyName = `${this.runId}.${sanitize(name)}`
    for (let i = 2; this.proxyNames.has(proxyName); i++) proxyName = `${this.runId}.${sanitize(name)}-${i}`
    this.proxyNames.add(proxyName)
    // Recorded before the request: if the call times out after the server acted, dispose still removes it.
    this.server.createdProxies.add(proxyName)
    const created = await this.request('POST', '/proxies', {
      name: proxyName, listen: `${this.listenHost}:0`, upstream: formatHostPort(upstream), enabled: true
    }) as { listen?: unknown }
    if (typeof created?.listen !== 'string') throw new Error(`Toxiproxy did not report where proxy ${proxyName} listens`)
    const link = new ProxiedLink(this, name, proxyName, parseHostPort(created.listen), { ...upstream })
    this.byName.set(name, link)
    return link
  }

  get (name: string): Link | undefined {
    return this.byName.get(name)
  }

  links (): Link[] {
    return [...this.byName.values()]
  }

  /** Deletes every proxy this instance created (all are attempted; failures are reported together). */
  async disposeAll (): Promise<void> {
    const failures: Error[] = []
    if (!this.server.running) {
      // A spawned server that exited took its proxies with it: there is nothing left to delete, and no one to ask.
      for (const proxyName of this.proxyNames) this.server.createdProxies.delete(proxyName)
      this.proxyNames.clear()
    }
    for (const proxyName of [...this.proxyNames]) {
      try {
        await this.request('DELETE', `/proxies/${encodeURIComponent(proxyName)}`)
      } catch (err) {
        // Gone already: the server was restarted, or the creating call never reached it.
        if (!(err instanceof ToxiproxyApiError && err.status === 404)) {
          failures.push(err as Error)
          continue
        }
      }
      this.proxyNames.delete(proxyName)
      this.server.createdProxies.delete(proxyName)
    }
    this.byName.clear()
    if (failures.length > 0) throw new AggregateError(failures, `could not delete ${failures.length} proxies of run ${this.runId}: ${failures.map(f => f.message).join('; ')}`)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.disposeAll()
  }
}
