import { PlanTimingSchema, type PlanTiming } from '../../nodes/config.ts'
import { toRealMs } from '../../nodes/timing.ts'
import type { Scenario, Step } from '../../scenarios/schema.ts'

/**
 * A scenario's deadline follows from its own plan times: the plan time its steps may wait (a `wait`'s timeout, a
 * `pause`, a connect's timeouts and retries over every bootstrap, a churn's rounds…) compressed by the run's
 * timeScale, plus the scenario's `timeoutMs` (and its real-time discovery bounds) as a real-ms allowance for what compression does not shorten
 * (starting nodes, libp2p's own admission, unscaled ping and DHT deadlines, machine load). A fixed deadline cannot
 * work: Test 4's 2-minute alert alone outlasts 120 s at timeScale 1.
 */
export interface ScenarioDeadline {
  /** The real-ms deadline: allowanceMs + planMs × timeScale. */
  ms: number
  allowanceMs: number
  /** The plan time the steps may wait, at most. */
  planMs: number
}

export function scenarioDeadline (scenario: Scenario, timeScale: number): ScenarioDeadline {
  const timing = PlanTimingSchema.parse({ ...scenario.timing })
  const bootstraps = scenario.nodes.filter(n => n.role !== 'peer').length
  const planMs = scenario.steps.reduce((sum, step) => sum + stepPlanMs(step, timing, Math.max(1, bootstraps)), 0)
  // waitBidirectional bounds are real time (nodes/timing.ts): they add to the allowance unscaled.
  // A wait's tolerance is real time as well.
  const realMs = scenario.steps.reduce((sum, step) => sum + (step.action === 'waitBidirectional' ? step.withinMs : step.action === 'wait' ? step.toleranceMs : 0), 0)
  const allowanceMs = scenario.timeoutMs + realMs
  return { ms: allowanceMs + (planMs === 0 ? 0 : toRealMs(planMs, timeScale)), allowanceMs, planMs }
}

/** The plan time one step may wait at most (0 for steps whose waits are all unscaled: the allowance covers them). */
export function stepPlanMs (step: Step, timing: PlanTiming, bootstraps: number): number {
  // One connect tries every bootstrap in turn, each with the first timeout and up to maxRetries busy retries.
  const connectMs = (timeoutMs: number | undefined, tried: number): number =>
    tried * ((timeoutMs ?? timing.connectionTimeoutMs) + timing.maxRetries * timing.busyRetryTimeoutMs)
  switch (step.action) {
    case 'wait': return step.timeoutMs
    case 'pause': return step.ms
    case 'connect': return connectMs(step.timeoutMs, step.bootstraps?.length ?? bootstraps)
    case 'churn': return step.rounds * (step.intervalMs + connectMs(undefined, bootstraps))
    case 'sweep': return step.values.length * step.steps.reduce((sum, s) => sum + stepPlanMs(s, timing, bootstraps), 0)
    default: return 0
  }
}
