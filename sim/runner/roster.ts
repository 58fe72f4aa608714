import type { NodeConfig } from '../../nodes/config.ts'
import type { NodeHandle } from '../../nodes/commands.ts'
import type { NodeSpec } from '../../scenarios/schema.ts'
import { handleOf, type NodeState } from './node-state.ts'

/**
 * The run's nodes: who they are (spec, config, identity, address) and what of each is up now (its state, a phase
 * of node-state.ts). lifecycle.ts moves a node between phases; steps read them.
 */

/** One node of a scenario run: its spec, its fixed config and address, and its lifecycle state. */
export interface RunNode {
  readonly name: string
  readonly spec: NodeSpec
  /** Undefined for blackholes and external nodes, which are not chiral-sim nodes. */
  /** Fixed before the first start (link-wiring adds the proxied routes). */
  config: NodeConfig | undefined
  /** Peers: the bootstrap node names to try, in failover order. */
  readonly bootstrapRefs: string[]
  /** Known before the start for chiral-sim and external nodes (from the identity seed or the multiaddr). */
  peerId: string | undefined
  /** The address peers dial: fixed before the first start, so a never-started bootstrap is a closed port. */
  address: string | undefined
  /** Written only by lifecycle.ts, one transition at a time. */
  readonly state: NodeState
  /** The output of each start of the node (process, container or external), for the record. */
  readonly outputs: Array<() => string>
}

export class Roster {
  readonly nodes = new Map<string, RunNode>()
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
    return handleOf(name, node.state)
  }

  nameOfPeer (peerId: string): string {
    for (const n of this.nodes.values()) if (n.peerId === peerId) return n.name
    return peerId
  }
}
