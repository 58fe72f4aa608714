import { z } from 'zod'

/**
 * What the supervisor reports and persists. Timestamps are epoch milliseconds from the supervisor's clock, so they
 * line up with node events in a RunRecord.
 */

export const CheckNameSchema = z.enum(['process', 'port', 'dht'])
export type CheckName = z.infer<typeof CheckNameSchema>

export const CheckOutcomeSchema = z.object({
  name: CheckNameSchema,
  ok: z.boolean(),
  /** Why it failed, or what it measured ("pid 1234", "ping 3.2 ms"). */
  detail: z.string(),
  durationMs: z.number()
})
export type CheckOutcome = z.infer<typeof CheckOutcomeSchema>

export const RecoverySchema = z.object({
  /** When the node failed: exact when the probe knows it (process exit time), otherwise the detection time. */
  failedAt: z.number(),
  failedAtExact: z.boolean(),
  detectedAt: z.number(),
  recoveredAt: z.number(),
  /** True when the node came back after a restart by the supervisor; false when it came back on its own or by hand. */
  automatic: z.boolean(),
  /** Restarts the supervisor made during this incident. */
  restarts: z.number().int(),
  /** The first failed check's reason. */
  reason: z.string()
})
export type Recovery = z.infer<typeof RecoverySchema>

export const SupervisorEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('check'), at: z.number(), node: z.string(), ok: z.boolean(), checks: z.array(CheckOutcomeSchema), latencyMs: z.number().nullable() }),
  z.object({
    type: z.literal('restart'), at: z.number(), node: z.string(), reason: z.string(),
    /** This restart's number within the current window (1 = first). */
    restartsInWindow: z.number().int(),
    ok: z.boolean(), durationMs: z.number(), error: z.string().optional()
  }),
  z.object({ type: z.literal('alert'), at: z.number(), node: z.string(), restartsInWindow: z.number().int(), windowMs: z.number(), message: z.string() }),
  z.object({ type: z.literal('recovered'), at: z.number(), node: z.string(), recovery: RecoverySchema, downtimeMs: z.number() })
])
export type SupervisorEvent = z.infer<typeof SupervisorEventSchema>
export type SupervisorEventListener = (event: SupervisorEvent) => void

const IncidentSchema = z.object({
  failedAt: z.number(),
  failedAtExact: z.boolean(),
  detectedAt: z.number(),
  restarts: z.number().int(),
  reason: z.string()
})
export type Incident = z.infer<typeof IncidentSchema>

/**
 * The history file: enough for a restarted supervisor to keep counting restarts within the window, to stay silent
 * after an alert until an operator acknowledges it, and to finish an incident that began before it restarted.
 */
export const SupervisorHistorySchema = z.object({
  version: z.literal(1),
  node: z.string(),
  restarts: z.array(z.object({ at: z.number(), reason: z.string() })),
  alert: z.object({ at: z.number(), message: z.string() }).nullable(),
  incident: IncidentSchema.nullable(),
  recoveries: z.array(RecoverySchema)
})
export type SupervisorHistory = z.infer<typeof SupervisorHistorySchema>
