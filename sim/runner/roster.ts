import type { NodeConfig } from '../../nodes/config.ts'
import type { NodeHandle } from '../../nodes/commands.ts'
import type { NodeSpec } from '../../scenarios/schema.ts'
import type { StartedBlackhole, StartedNode } from '../backends/backend.ts'
import type { SupervisedNode } from '../backends/supervise.ts'

/**
 * The run's nodes: who they are (spec, config, identity, address) and what of each is running now (a node, a
 * blackhole, an external process, a supervisor). lifecycle.ts changes it; steps read it.
 */

/** An external node's process or container, when chiral-sim started it from the scenario's command or image. */
export interface StartedExternal {
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>
  /** SIGKILL: the crash of the plan's Test 5. */
  kill(): Promise<void>
}

/** One node of a scenario run: its spec, its fixed config and address, and whatever is running now. */
export interface RunNode {
  readonly name: string
  readonly spec: NodeSpec
  /** Undefined for blackholes and external nodes, which are not chiral-sim nodes. */
  config: NodeConfig | undefined
  /** Peers: the bootstrap node names to try, in failover order. */
  bootstrapRefs: string[]
  peerId: string | undefined
  /** The address peers dial: fixed before the first start, so a never-started bootstrap is a closed port. */
  address: string | undefined
  running: StartedNode | undefined
  blackhole: StartedBlackhole | undefined
  /** An external node's process, when chiral-sim started it from the scenario's command. */
  external: StartedExternal | undefined
  unsubscribe: (() => void) | undefined
  /** The output of each start of the node (process, container or external), for the record. */
  outputs: Array<() => string>
}

export class Roster {
  readonly nodes = new Map<string, RunNode>()
  /** Supervised bootstraps (plan Solution #4), stopped before the nodes at teardown. */
  readonly supervised = new Map<string, SupervisedNode>()

  node (name: string): RunNode {
    const node = this.nodes.get(name)
    if (node == null) throw new Error(`unknown node "${name}"`)
    return node
  }

  /** The running chiral-sim node's handle, or a clear error naming the node's state. */
  handle (name: string): NodeHandle {
    const node = this.node(name)
    if (node.spec.role === 'external' || node.spec.role === 'blackhole') {
      throw new Error(`node "${name}" is ${node.spec.role === 'external' ? 'an external black box' : 'a blackhole'} without a control channel: check it through the peers (connect, health, sees, reachable)`)
    }
    if (node.running == null) throw new Error(`node "${name}" is not running (start it first)`)
    return node.running.handle
  }

  nameOfPeer (peerId: string): string {
    for (const n of this.nodes.values()) if (n.peerId === peerId) return n.name
    return peerId
  }
}
