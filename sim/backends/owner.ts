import { readFileSync, readlinkSync } from 'node:fs'
import { hostname } from 'node:os'

/**
 * Who started a run's containers and networks, written on them as labels, so that a later run (or `chiral-sim
 * clean`) can tell a live run's resources from those of a harness that died (SIGKILL, OOM, a lost CI runner) and
 * that nothing else will ever remove. A pid alone is not enough: it is reused, and it means nothing on another
 * machine, in another pid namespace (a sibling CI container on the same engine) or after a reboot; so the owner is
 * host + boot + pid namespace + pid + the pid's start time.
 */

export const OWNER_LABELS = {
  host: 'chiral-sim.owner.host',
  boot: 'chiral-sim.owner.boot',
  pidns: 'chiral-sim.owner.pidns',
  pid: 'chiral-sim.owner.pid',
  start: 'chiral-sim.owner.start'
} as const

export type OwnerState = 'alive' | 'dead' | 'unknown'

export function ownerLabels (): Record<string, string> {
  return {
    [OWNER_LABELS.host]: hostname(),
    [OWNER_LABELS.boot]: bootId() ?? '',
    [OWNER_LABELS.pidns]: pidNamespace() ?? '',
    [OWNER_LABELS.pid]: String(process.pid),
    [OWNER_LABELS.start]: startTime(process.pid) ?? ''
  }
}

/**
 * 'unknown' for resources without owner labels (an older chiral-sim) and for another machine's: a shared remote
 * engine serves other people's runs, whose harnesses this machine cannot see.
 */
export function ownerState (labels: Record<string, string> | undefined): OwnerState {
  const pid = Number(labels?.[OWNER_LABELS.pid])
  if (labels == null || !Number.isInteger(pid) || pid <= 0) return 'unknown'
  if (labels[OWNER_LABELS.host] !== hostname()) return 'unknown'
  // Its pids are not ours to look up (e.g. a sibling CI job sharing this host's name and engine).
  if ((labels[OWNER_LABELS.pidns] ?? '') !== (pidNamespace() ?? '')) return 'unknown'
  const boot = bootId()
  if (boot != null && labels[OWNER_LABELS.boot] !== '' && labels[OWNER_LABELS.boot] !== boot) return 'dead'
  if (!processExists(pid)) return 'dead'
  const start = labels[OWNER_LABELS.start]
  // Same pid, other start time: the pid was reused by an unrelated process.
  if (start != null && start !== '' && startTime(pid) !== start) return 'dead'
  return 'alive'
}

function processExists (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function pidNamespace (): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch {
    return undefined
  }
}

function bootId (): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return undefined
  }
}

/** Field 22 of /proc/PID/stat (clock ticks since boot); undefined where there is no /proc. */
function startTime (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
