import { setTimeout as sleep } from 'node:timers/promises'
import type { NodeHandle } from '../../nodes/commands.ts'
import type { RemoteNode } from '../../nodes/control/client.ts'
import type { StartedNode } from './backend.ts'

/** Lets events written just before the node's exit reach subscribers before the runner unsubscribes. */
const DRAIN_MS = 100

/**
 * How a process or container node stops: its own goodbye first (the `shutdown` command, so peers see a clean
 * close), then the platform's force once half the deadline is gone. A dead control channel just moves on to force.
 */
export async function shutdownThenForce (handle: NodeHandle, timeoutMs: number, platform: {
  waitForExit: (ms: number) => Promise<boolean>
  force: (ms: number) => Promise<void>
}): Promise<void> {
  const half = Math.max(1, Math.floor(timeoutMs / 2))
  await handle.call('shutdown', {}, { signal: AbortSignal.timeout(half) }).catch(() => {})
  if (!await platform.waitForExit(half)) await platform.force(half)
  await sleep(DRAIN_MS)
}

/**
 * A node in another process or container, reached through its control channel. It ends exactly once, by a
 * graceful stop or a kill, whichever comes first; disposing it stops it and closes the control client.
 */
export abstract class RemoteStartedNode implements StartedNode {
  abstract readonly handle: RemoteNode
  abstract readonly peerId: string
  abstract readonly multiaddrs: string[]
  #ended: Promise<void> | undefined

  async stop (): Promise<void> {
    this.#ended ??= this.graceful()
    await this.#ended
  }

  async kill (): Promise<void> {
    this.#ended ??= this.abrupt()
    await this.#ended
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    try {
      await this.stop()
    } finally {
      await this.handle.close()
    }
  }

  /** The node's own goodbye, then the platform's force (see shutdownThenForce). */
  protected abstract graceful (): Promise<void>
  /** As `kill -9`: no goodbye. */
  protected abstract abrupt (): Promise<void>
}
