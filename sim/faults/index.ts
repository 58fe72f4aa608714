/** Faults through a real Toxiproxy: the server, one proxy per link, the toxic schema, and the bypass check. */
export { startToxiproxy, findToxiproxyBinary, ToxiproxyUnavailableError, REPO_BINARY } from './toxiproxy-server.ts'
export type { ToxiproxyServer, StartToxiproxyOptions } from './toxiproxy-server.ts'
export { LinkProxies, newRunId } from './link-proxies.ts'
export type { Link, LinkBytes, HostPort, ActiveToxic, LinkProxiesOptions } from './link-proxies.ts'
export { checkNoBypass } from './bypass.ts'
export type { BypassCheckInput, BypassCheckResult } from './bypass.ts'
export { ToxiproxyApiError } from './api.ts'
