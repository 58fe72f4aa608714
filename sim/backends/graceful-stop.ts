import { setTimeout as sleep } from 'node:timers/promises'
import type { NodeHandle } from '../../nodes/commands.ts'

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
