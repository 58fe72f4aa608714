import fs from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * A zombie (exited, not yet reaped by its parent) answers kill(pid, 0) but is dead: check /proc too. This matters
 * in CI containers whose PID 1 does not reap, where an orphan killed by a test stays a zombie for good.
 */
export function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch (err) {
    // No /proc (macOS): kill(pid, 0) succeeding is the best evidence there is.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync('/proc/self')
  }
}

/** Polls `check` until it holds (true) or `deadlineMs` passes (false). */
export async function waitUntil (check: () => boolean | Promise<boolean>, deadlineMs: number, intervalMs = 25): Promise<boolean> {
  const end = Date.now() + deadlineMs
  while (true) {
    if (await check()) return true
    if (Date.now() >= end) return false
    await sleep(intervalMs)
  }
}
