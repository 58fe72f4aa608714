import { z } from 'zod'
import { TimeScaleSchema, type PlanTiming } from '../config.ts'
import { toRealMs, type UNSCALED } from '../timing.ts'

/**
 * Plan Solution #4's numbers, validated like the rest of the plan's timing (nodes/config.ts). The schedule's
 * durations are compressed together by `timeScale`: at 0.01 a 10-minute restart window lasts 6 s and the 60 s check
 * 0.6 s, and the 3-in-10-minutes rule keeps its meaning. The 5 s ping deadline and the restart timeout are real time
 * at every scale (nodes/timing.ts, UNSCALED): the supervisor and the peers judge a frozen DHT by the same deadline.
 *
 * Kept beside the supervisor rather than in PlanTimingFields because only the supervisor reads them; the ping
 * deadline, which the peers' health checks share, comes from PlanTiming.healthPingTimeoutMs (see `fromPlanTiming`).
 */
export const SupervisorConfigSchema = z.object({
  /** Solution #4.5: the systemd timer runs the health script every 60 s. */
  checkIntervalMs: z.number().int().min(10).default(60_000),
  /**
   * Solution #4.4: a DHT that does not answer a ping within 5 s is frozen. Also bounds the process and port checks.
   * Real time, not scaled (nodes/timing.ts): the plan gives no compressed variant, and the peers use the same 5 s.
   */
  pingTimeoutMs: z.number().int().min(10).default(5_000),
  /** Solution #4.6: more than `maxRestarts` restarts within this window raises the operator alert. */
  restartWindowMs: z.number().int().min(10).default(600_000),
  /** Solution #4.6: "> 3 restarts in 10 minutes → alert operator, don't auto-restart". */
  maxRestarts: z.number().int().min(0).default(3),
  /**
   * How long a restarted bootstrap has to pass all three checks again. The plan's "total downtime < 90 s" (Test 5)
   * is detection (≤ 60 s) plus this, so 30 s keeps the target reachable. Not scaled: starting a process or a
   * container takes the same real time whatever the scenario's timeScale.
   */
  restartTimeoutMs: z.number().int().min(10).default(30_000),
  /** After a restart, checks repeat this often until the node passes (instead of waiting a whole interval). */
  recoveryPollMs: z.number().int().min(1).default(1_000),
  timeScale: TimeScaleSchema.default(1)
}).strict()

export type SupervisorConfigInput = z.input<typeof SupervisorConfigSchema>
export type SupervisorConfig = z.output<typeof SupervisorConfigSchema>

/** The supervisor durations that `timeScale` compresses; the others are in nodes/timing.ts's UNSCALED. */
export const SCALED_SUPERVISOR_KEYS = ['checkIntervalMs', 'restartWindowMs', 'recoveryPollMs'] as const satisfies ReadonlyArray<Exclude<keyof SupervisorConfig, keyof typeof UNSCALED>>

/** The config with `timeScale` applied to every scaled duration: what the supervisor actually waits. */
export function scaledSupervisorConfig (config: SupervisorConfig): SupervisorConfig {
  const out = { ...config }
  for (const key of SCALED_SUPERVISOR_KEYS) out[key] = toRealMs(config[key], config.timeScale)
  return out
}

/**
 * The supervisor config of a node run with `timing`: same timeScale, and the same 5 s ping deadline the peers'
 * health checks use, so that one scenario override changes both. `overrides` are plan (unscaled) values.
 */
export function supervisorConfigFromPlanTiming (timing: PlanTiming, overrides: Omit<SupervisorConfigInput, 'timeScale'> = {}): SupervisorConfig {
  return SupervisorConfigSchema.parse({ pingTimeoutMs: timing.healthPingTimeoutMs, ...overrides, timeScale: timing.timeScale })
}
