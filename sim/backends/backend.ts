import type { CommandName, NodeHandle } from '../../nodes/commands.ts'
import type { NodeConfig, Transport } from '../../nodes/config.ts'
import type { Mode } from '../../scenarios/record.ts'
import type { ToxiproxyServer } from '../faults/toxiproxy-server.ts'
import type { ForeignPeerImplementation } from '../../scenarios/reference-peer.ts'

/**
 * A backend is "how to start a node and reach its commands", nothing more (shape.md). The runner never learns
 * where a node lives: in this process, in a child process or in a container, it gets a NodeHandle.
 */
export interface StartedNode extends AsyncDisposable {
  readonly handle: NodeHandle
  readonly peerId: string
  /** Addresses other nodes of the run can dial (container addresses in docker mode). */
  readonly multiaddrs: string[]
  /** Graceful stop: the node says goodbye to its peers. */
  stop(): Promise<void>
  /** Abrupt end, as `kill -9`: no goodbye, sockets reset. */
  kill(): Promise<void>
  /** Nodes that are a process or a container: the end of what it printed, bounded; readable after it ended. */
  output?(): string
}

/** A listener that accepts and never answers (the plan's hung bootstrap). */
export interface StartedBlackhole extends AsyncDisposable {
  readonly multiaddr: string
  close(): Promise<void>
}

/** A third-party image run as a node of the run (an external bootstrap given as an image). */
export interface ImageNodeOptions {
  name: string
  image: string
  /** The container's arguments (its CMD). */
  args: string[]
  /** Text its output prints once it accepts connections; without it the container counts as started at once. */
  readyLine?: string | undefined
  startTimeoutMs: number
}

export interface StartedImageNode {
  /** SIGTERM, then SIGKILL after a grace period; the container is removed. */
  stop(): Promise<void>
  /** SIGKILL; the container is removed. */
  kill(): Promise<void>
  /** Its last output. */
  logs(): string
}

/** The port an image node listens on inside its own network namespace (an external node's `{port}`). */
export const IMAGE_PORT = 4001

export interface Backend extends AsyncDisposable {
  readonly mode: Mode
  readonly transport: Transport
  /**
   * Fixes a node's listen addresses before it first starts, so that peers can be pointed at a bootstrap that is
   * down, and a restarted bootstrap comes back at the same address.
   */
  place(config: NodeConfig, signal: AbortSignal): Promise<{ listen: string[] }>
  startNode(config: NodeConfig, signal: AbortSignal): Promise<StartedNode>
  startBlackhole(name: string, signal: AbortSignal): Promise<StartedBlackhole>
  /**
   * An address of this machine that this backend's nodes can reach (loopback for host processes, the run network's
   * gateway for containers): Toxiproxy's proxies and external nodes listen there. Throws, saying why, when the
   * nodes cannot reach a listener on this machine at all.
   */
  hostAddress(signal: AbortSignal): Promise<string>
  /**
   * Backends whose nodes a Toxiproxy on this machine cannot sit between (swarm: other engines): a Toxiproxy started
   * among the nodes, and the address its proxies listen on there. Without it, faults use a local Toxiproxy whose
   * proxies listen at hostAddress().
   */
  startToxiproxy?(signal: AbortSignal): Promise<{ server: ToxiproxyServer, listenHost: string }>
  /**
   * Backends that run containers: the address an image node will have (fixed before it first starts, kept across
   * restarts, like a bootstrap's), and starting it there.
   */
  placeImage?(name: string, signal: AbortSignal): Promise<string>
  /**
   * Backends that run nodes as processes on this machine (tcp, process): a peer of another implementation
   * (interop/), reached through the same control-channel handle as a chiral node of the process backend.
   */
  startReferencePeer?(implementation: ForeignPeerImplementation, config: NodeConfig, signal: AbortSignal): Promise<StartedNode>
  startImage?(options: ImageNodeOptions, signal: AbortSignal): Promise<StartedImageNode>
  /**
   * Backends that run containers: an image (its tag) whose entry point is `binary`, a native program of this
   * machine, built without a registry and cached by the binary's content under `repo`. How a program chiral-sim
   * knows (an interop reference node) runs as a container of the run rather than a process beside it.
   */
  binaryImage?(repo: string, binary: string, signal: AbortSignal): Promise<string>
}

export type { CommandName }
