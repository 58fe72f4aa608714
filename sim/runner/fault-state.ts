import type { Link } from '../faults/link-proxies.ts'

/** The run's network faults as they stand: its links' proxies, the faults active on them by name, their timers. */
export class FaultState {
  /** Fault proxies, one per ordered pair of nodes, when the scenario injects faults. */
  readonly links = new Map<string, Link>()
  /** Active faults by name (`as`), each with what it did to which link and its index in the evidence's faults. */
  readonly active = new Map<string, Array<{ link: Link, toxic?: string, record: number }>>()
  /** Timers the run set (fault durations): cleared at teardown. */
  readonly timers = new Set<NodeJS.Timeout>()
}
