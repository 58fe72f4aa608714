import type { NodeHandle } from '../../nodes/commands.ts'
import type { StartedBlackhole, StartedNode } from '../backends/backend.ts'
import type { SupervisedNode } from '../backends/supervise.ts'

/**
 * What of a run's node is up now, as types (testcontainers' StartedX / StoppedX): each phase carries exactly what
 * exists in it, so "stopped, yet with a handle" or "supervised without a supervisor" cannot be written. Only
 * lifecycle.ts moves a node from one phase to the next; everything else reads the phase.
 *
 *     declared ──start──▶ started ──supervise──▶ supervised ──kill──▶ recovering ──(supervisor restarts)──▶ supervised
 *        │                  │  ▲                   │ (stop: supervision ends, then the node)
 *        │                  │  └──unsupervise──────┘
 *        │                  └──stop / kill──▶ stopped / killed ──start──▶ started …
 *        ├──start (blackhole)──▶ listening ──stop / kill──▶ stopped
 *        └──start (external)──▶ launched (chiral-sim started it) ──stop / kill──▶ stopped / killed
 *                             ▶ reached (it was already running elsewhere: answered the probe; not ours to stop)
 */

/** An external node's process or container, when chiral-sim started it from the scenario's command or image. */
export interface StartedExternal {
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>
  /** SIGKILL: the crash of the plan's Test 5. */
  kill(): Promise<void>
}

/** A chiral-sim node running now, and the subscription that records its events. */
export interface Running {
  readonly node: StartedNode
  readonly unsubscribe: () => void
}

export type NodeState =
  /** Never started: a bootstrap's fixed address is a closed port. */
  | { readonly phase: 'declared' }
  /** A chiral-sim node running, unsupervised. */
  | { readonly phase: 'started', readonly running: Running }
  /** A bootstrap under its supervisor (plan Solution #4); `running` is swapped on each restart. */
  | { readonly phase: 'supervised', readonly running: Running, readonly supervision: SupervisedNode }
  /** A supervised bootstrap that was killed: down until its supervisor brings it back. */
  | { readonly phase: 'recovering', readonly supervision: SupervisedNode }
  /** A blackhole accepting and never answering. */
  | { readonly phase: 'listening', readonly blackhole: StartedBlackhole }
  /** An external node chiral-sim started from the scenario's command or image. */
  | { readonly phase: 'launched', readonly external: StartedExternal }
  /** An external node chiral-sim found running (it answered the probe): not chiral-sim's to stop. */
  | { readonly phase: 'reached' }
  | { readonly phase: 'stopped' }
  | { readonly phase: 'killed' }

export type Phase = NodeState['phase']

/** The chiral-sim node running now, if any (started or supervised). */
export function runningNode (state: NodeState): StartedNode | undefined {
  return state.phase === 'started' || state.phase === 'supervised' ? state.running.node : undefined
}

/** Something of the node is up that a stop would end (a restart stops it first). */
export function isUp (state: NodeState): boolean {
  return state.phase === 'started' || state.phase === 'supervised' || state.phase === 'listening' || state.phase === 'launched'
}

/** The handle of a running chiral-sim node, or why there is none. */
export function handleOf (name: string, state: NodeState): NodeHandle {
  const node = runningNode(state)
  if (node == null) {
    throw new Error(state.phase === 'recovering'
      ? `node "${name}" is not running (it was killed; its supervisor is bringing it back)`
      : `node "${name}" is not running (start it first)`)
  }
  return node.handle
}
