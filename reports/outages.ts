import type { ScenarioRecord, StepRecord } from '../scenarios/record.ts'

/**
 * The bootstrap outages and disturbances a scenario makes on purpose, read back from its record: a stop or kill of a
 * bootstrap (until a step or its supervisor brings it back), a restart, and a fault on a link to a bootstrap (an
 * outage: Toxiproxy `down` or a cutting toxic; a disturbance: a toxic that only slows the link, in a fault or a
 * sweep). The KPIs use them twice: the outages (`cuts`) as the failures whose detection is timed, and all of them as
 * the windows in which a health check or a verification does not measure the bootstrap "under normal operation".
 */

/** Toxics that slow a link without cutting it: nothing should turn red, so they are not outages. */
export const DEGRADATION_FAULT_KINDS: ReadonlySet<string> = new Set(['latency', 'jitter', 'bandwidth', 'slow_close', 'slicer'])

export interface Outage {
  /** The bootstrap (or external bootstrap) that went away. */
  bootstrap: string
  /** The step that caused it. */
  step: StepRecord
  cause: 'stop' | 'kill' | 'restart' | 'fault' | 'sweep'
  /** False for a toxic that only slows the link (latency, bandwidth…): a deliberate disturbance, not a failure. */
  cuts: boolean
  /** Nodes cut off from the bootstrap; null = every node (the bootstrap itself is gone). */
  observers: ReadonlySet<string> | null
  from: number
  /** When the bootstrap was back (restarted, recovered by its supervisor, fault healed); null = not within the scenario. */
  to: number | null
}

/** Bootstraps in the KPIs' sense: chiral-sim bootstraps and the external nodes peers bootstrap from. */
export function bootstrapNames (s: ScenarioRecord): Set<string> {
  return new Set(s.nodes.filter(n => n.role === 'bootstrap' || n.role === 'external').map(n => n.name))
}

const LINK = /^(.+)->(.+)$/

export function deliberateOutages (s: ScenarioRecord): Outage[] {
  const bootstraps = bootstrapNames(s)
  const outages: Outage[] = []
  const steps = [...s.steps].sort((a, b) => a.startedAt - b.startedAt)
  for (const step of steps) {
    // A stop/kill step that itself failed did not take the bootstrap down.
    if (!step.ok) continue
    for (const b of step.targets.filter(t => bootstraps.has(t))) {
      if (step.kind === 'restart') {
        outages.push({ bootstrap: b, step, cause: 'restart', cuts: true, observers: null, from: step.startedAt, to: step.endedAt })
      } else if (step.kind === 'stop' || step.kind === 'kill') {
        outages.push({ bootstrap: b, step, cause: step.kind, cuts: true, observers: null, from: step.startedAt, to: backAt(s, steps, b, step) })
      }
    }
  }
  // One outage per fault step and bootstrap; the links it cut tell who was cut off.
  const byStep = new Map<string, Outage>()
  for (const f of s.faults) {
    const cuts = !DEGRADATION_FAULT_KINDS.has(f.kind)
    const m = LINK.exec(f.link)
    if (m == null) continue
    const [, from, to] = m as unknown as [string, string, string]
    const step = s.steps.find(st => st.index === f.step)
    if (step == null) continue
    for (const [b, other] of [[to, from], [from, to]] as const) {
      if (!bootstraps.has(b)) continue
      const key = `${f.step}/${b}/${cuts}`
      const o = byStep.get(key) ?? { bootstrap: b, step, cause: step.kind === 'sweep' ? 'sweep' as const : 'fault' as const, cuts, observers: new Set<string>(), from: f.appliedAt, to: f.removedAt }
      ;(o.observers as Set<string>).add(other)
      o.from = Math.min(o.from, f.appliedAt)
      o.to = o.to === null || f.removedAt === null ? null : Math.max(o.to, f.removedAt)
      byStep.set(key, o)
    }
  }
  outages.push(...byStep.values())
  return outages.sort((a, b) => a.from - b.from)
}

/** When a stopped or killed bootstrap was back: the next step that started it, or its supervisor's recovery. */
function backAt (s: ScenarioRecord, steps: readonly StepRecord[], bootstrap: string, down: StepRecord): number | null {
  const started = steps.find(st => st.startedAt >= down.endedAt && st.ok && st.targets.includes(bootstrap) && (st.kind === 'start' || st.kind === 'restart'))
  const recovered = s.events.find(e => e.node === bootstrap && e.type === 'supervisor:recovered' && e.time >= down.startedAt)
  const times = [started?.endedAt, recovered?.time].filter((t): t is number => t != null)
  return times.length === 0 ? null : Math.min(...times)
}

/**
 * Whether `observer` was cut off from `bootstrap` on purpose at some moment of [start, end] (a check in flight when
 * the outage began is affected by it; `to + settleMs` allows for the monitor's resolution after it ended).
 */
export function inDeliberateOutage (outages: readonly Outage[], bootstrap: string | null, observer: string, span: { start: number, end: number }, settleMs: (observer: string) => number): boolean {
  return outages.some(o =>
    (bootstrap === null || o.bootstrap === bootstrap) &&
    (o.observers === null || o.observers.has(observer)) &&
    span.end >= o.from && (o.to === null || span.start <= o.to + settleMs(observer)))
}

/** The bootstrap a health check or a connect result was about, by the peer ID in its address. */
export function bootstrapOfAddress (s: ScenarioRecord, address: string | undefined): string | null {
  if (address == null) return null
  const peerId = address.split('/p2p/').at(-1)
  return s.nodes.find(n => n.peerId != null && n.peerId === peerId)?.name ?? null
}

/** Each observer's health-check interval in real ms (from its monitor:started events), for the settle window. */
export function checkIntervals (s: ScenarioRecord): Map<string, number> {
  const out = new Map<string, number>()
  for (const e of s.events) {
    if (e.type === 'monitor:started') out.set(e.node, Math.max(out.get(e.node) ?? 0, e.intervalMs))
  }
  return out
}
