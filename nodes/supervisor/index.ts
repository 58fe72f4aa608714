/**
 * @packageDocumentation
 *
 * The bootstrap supervisor (plan Solution #4): three checks per cycle (process alive, port open, libp2p ping
 * answered), a restart on failure, at most 3 restarts in 10 minutes, then an operator alert instead of a 4th.
 * `Supervisor` takes what to probe and how to restart it as a `SupervisedTarget`, so the same loop supervises a
 * child process, a container or a systemd unit (ops/bootstrap-health.sh is its shell twin); restarts are kept in a
 * history file so the window survives the supervisor's own restart.
 *
 * @example
 * ```ts
 * import { Supervisor, supervisorConfigFromPlanTiming } from './index.ts'
 *
 * // target: how to probe and restart the bootstrap (a SupervisedTarget); timing: the node's PlanTiming
 * await using supervisor = new Supervisor({
 *   target, historyFile: '/var/lib/chiral/restarts.json', config: supervisorConfigFromPlanTiming(timing),
 *   onAlert: alert => { notifyOperator(alert.message) }
 * })
 * supervisor.subscribe(event => { console.log(event.type) })
 * supervisor.start()
 * ```
 */
export { Supervisor, systemClock, type Clock, type CycleResult, type OperatorAlert, type ProbeResult, type SupervisedTarget, type SupervisorOptions } from './supervisor.ts'
export { SupervisorConfigSchema, scaledSupervisorConfig, supervisorConfigFromPlanTiming, type SupervisorConfig, type SupervisorConfigInput } from './config.ts'
export { SupervisorEventSchema, SupervisorHistorySchema, RecoverySchema, CheckOutcomeSchema, type SupervisorEvent, type SupervisorEventListener, type SupervisorHistory, type Recovery, type CheckOutcome } from './schemas.ts'
export { loadHistory, saveHistory, emptyHistory } from './history.ts'
export { createPinger, probePort, tcpHostPort, type Pinger, type PingerOptions } from './probes.ts'
