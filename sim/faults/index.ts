/**
 * @packageDocumentation
 *
 * Faults through a real Toxiproxy, attached to links, not nodes: `startToxiproxy` starts (or finds, through
 * TOXIPROXY_URL) a server on loopback, `LinkProxies` makes one proxy per ordered pair of nodes and applies toxics
 * (the schema is scenarios/toxic-spec.ts) or takes a link down, `checkNoBypass` proves afterwards that the dialer
 * really went through the proxy. Everything is disposable: proxies and a spawned server go with the run.
 *
 * @example
 * ```ts
 * import { LinkProxies, startToxiproxy } from './index.ts'
 *
 * await using server = await startToxiproxy()
 * await using proxies = new LinkProxies(server)
 * const link = await proxies.createLink('A->boot', { host: '127.0.0.1', port: 4001 })
 * await link.addToxic({ type: 'latency', latency: 300 })   // dial link.listen instead of 4001 to feel it
 * ```
 */
export { startToxiproxy, findToxiproxyBinary, ToxiproxyUnavailableError, REPO_BINARY } from './toxiproxy-server.ts'
export type { ToxiproxyServer, StartToxiproxyOptions } from './toxiproxy-server.ts'
export { LinkProxies, newRunId } from './link-proxies.ts'
export type { Link, LinkBytes, HostPort, ActiveToxic, LinkProxiesOptions } from './link-proxies.ts'
export { checkNoBypass } from './bypass.ts'
export type { BypassCheckInput, BypassCheckResult } from './bypass.ts'
export { ToxiproxyApiError } from './api.ts'
