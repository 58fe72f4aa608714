import type { NodeConfig } from '../../nodes/config.ts'
import { createPinger, type Pinger } from '../../nodes/supervisor/probes.ts'
import { supervisorConfigFromPlanTiming, type SupervisorConfigInput } from '../../nodes/supervisor/config.ts'
import type { SupervisorEventListener } from '../../nodes/supervisor/schemas.ts'
import { Supervisor, type OperatorAlert, type ProbeResult } from '../../nodes/supervisor/supervisor.ts'
import type { Backend, StartedNode } from './backend.ts'
import type { RemoteStartedNode } from './graceful-stop.ts'

/**
 * Plan Solution #4 for backends whose nodes are real processes (process and docker modes): the runner hands a
 * started bootstrap to `supervise()` and gets back a SupervisedNode whose Supervisor restarts it through the
 * backend. In-process nodes cannot crash on their own, so the in-process backend does not offer this.
 */

export interface SuperviseOptions {
  /** Plan values (unscaled); timeScale and the 5 s ping deadline come from the node's own timing config. */
  supervisor?: Omit<SupervisorConfigInput, 'timeScale'>
  /** Default: a file in the backend's state directory, removed with the backend. Pass one to keep it. */
  historyFile?: string
  /**
   * Called with the replacement after every restart. The runner must swap it in (its node's "supervised" phase) and re-subscribe
   * to its events: the new process numbers its events from 0 again.
   */
  onRestarted?: (node: StartedNode) => void
  /** The plan's operator notification; the alert is also an event. */
  onAlert?: (alert: OperatorAlert) => void | Promise<void>
  /** Every check, restart, alert and recovery as it happens. */
  onEvent?: SupervisorEventListener
  /** Default true: first check now, then every interval. False: the caller drives `supervisor.checkOnce()`. */
  autoStart?: boolean
}

export interface SupervisedNode extends AsyncDisposable {
  readonly supervisor: Supervisor
  /** The node running now: the one passed in, then each replacement. */
  readonly current: StartedNode
  /** Ends supervision (waiting out a restart in flight); the node keeps running. */
  stop(): Promise<void>
}

export interface SupervisingBackend extends Backend {
  supervise(node: StartedNode, options?: SuperviseOptions): Promise<SupervisedNode>
}

export function canSupervise (backend: Backend): backend is SupervisingBackend {
  return typeof (backend as Partial<SupervisingBackend>).supervise === 'function'
}

/** What a backend knows about its own nodes: the supervisor's three probes and a restart. */
export interface SupervisionAdapter<N extends RemoteStartedNode> {
  checkProcess(node: N, signal: AbortSignal): Promise<ProbeResult>
  checkPort(node: N, signal: AbortSignal): Promise<ProbeResult>
  /** An address the harness itself can dial, with /p2p/ (in docker: through the published port). */
  pingAddress(node: N): string
  /**
   * Starts a replacement from the supervised config (same identity and listen address). The supervisor has killed
   * what was left of the old node first: a hung process still holds the port, a container its slot.
   */
  startNode(config: NodeConfig, signal: AbortSignal): Promise<N>
  /**
   * When the backend saw the node end (exit, kill), if it did. A node killed between two checks fails the later
   * one (port, ping), which cannot know when; this keeps the recovery's failure time exact all the same.
   */
  endedAt?(node: N): number | undefined
}

/**
 * Supervises `initial` through the backend's adapter. `registry` is the backend's set of live supervisions: the
 * result is in it until stopped, so the backend can stop every supervisor before its nodes at disposal.
 */
export async function superviseWith<N extends RemoteStartedNode> (
  initial: N, config: NodeConfig, adapter: SupervisionAdapter<N>, historyFile: string, options: SuperviseOptions, registry: Set<SupervisedNode>
): Promise<SupervisedNode> {
  let current = initial
  let pinger: Pinger | undefined
  const getPinger = async (): Promise<Pinger> => {
    pinger ??= await createPinger({ protocolPrefix: config.dht.pingProtocolPrefix })
    return pinger
  }
  const dated = (result: ProbeResult): ProbeResult => {
    if (result.ok || result.since != null) return result
    const since = adapter.endedAt?.(current)
    return since != null ? { ...result, since } : result
  }
  const supervisor = new Supervisor({
    target: {
      name: config.name,
      checkProcess: async signal => dated(await adapter.checkProcess(current, signal)),
      checkPort: async signal => dated(await adapter.checkPort(current, signal)),
      checkDht: async signal => dated(await (await getPinger()).ping(adapter.pingAddress(current), signal)),
      restart: async signal => {
        await current.kill()
        await current.handle.close()
        current = await adapter.startNode(config, signal)
        try {
          options.onRestarted?.(current)
        } catch (err) {
          // The node did restart; a faulty callback must not make the supervisor count it as a failed restart.
          process.stderr.write(`supervisor ${config.name}: onRestarted threw: ${(err as Error).message}\n`)
        }
      }
    },
    config: supervisorConfigFromPlanTiming(config.timing, options.supervisor),
    historyFile,
    ...(options.onAlert != null ? { onAlert: options.onAlert } : {})
  })
  if (options.onEvent != null) supervisor.subscribe(options.onEvent)
  if (options.autoStart !== false) supervisor.start()
  let stopped: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopped ??= (async () => {
      await supervisor.stop()
      await pinger?.close()
      registry.delete(supervised)
    })()
    await stopped
  }
  const supervised: SupervisedNode = {
    supervisor,
    get current () { return current },
    stop,
    [Symbol.asyncDispose]: stop
  }
  registry.add(supervised)
  return supervised
}
