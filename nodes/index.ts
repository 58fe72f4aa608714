/**
 * @packageDocumentation
 *
 * The system under test: a chiral node on js-libp2p (TCP or memory transport, kad-dht, identify, ping) and the
 * plan's commands it serves. Everything the harness does to a node goes through one command set (`commands`,
 * zod request/response schemas, names from the plan: `connectWithTimeout`, `checkBootstrapHealth`,
 * `verifyPeerReachable`, …), in-process (`LocalNode`) or over the authenticated control channel (`serveControl`,
 * `RemoteNode`). Plan timing (`PlanTimingSchema`) and its time scale are one validated object; `nodes/timing.ts`
 * converts plan ↔ real milliseconds. The supervisor (plan Solution #4) is in nodes/supervisor/.
 * Nothing here imports the harness (`sim/`): the node image ships this folder alone.
 *
 * @example
 * ```ts
 * import { startNode } from 'chiral-sim'
 *
 * await using boot = await startNode({ name: 'boot', role: 'bootstrap', transport: 'memory' })
 * await using peer = await startNode({ name: 'A', role: 'peer', transport: 'memory', bootstrapAddrs: boot.multiaddrs() })
 * const result = await peer.call('connectWithTimeout', {})   // { success, attempts: [{ outcome, … }], … }
 * ```
 */
export { LocalNode, startNode, VERSIONS } from './node.ts'
export { commands, commandNames, CommandError, dispatch, parseRequest } from './commands.ts'
export type { CommandName, CommandRequest, CommandResponse, NodeHandle, CallOptions } from './commands.ts'
export { NodeConfigSchema, PlanTimingSchema, PlanTimingOverridesSchema, scaled } from './config.ts'
export type { NodeConfig, NodeConfigInput, PlanTiming } from './config.ts'
export { NodeEventSchema, EventLog } from './events.ts'
export type { NodeEvent, NodeEventType } from './events.ts'
export * from './schemas.ts'
export { categorizeBootstrapError, BOOTSTRAP_ERROR_MESSAGES } from './errors.ts'
export { BootstrapMonitor } from './health/monitor.ts'
export { serveControl } from './control/server.ts'
export { RemoteNode } from './control/client.ts'
