import { describe, expect, it } from 'vitest'
import { PlanTimingFields, PlanTimingSchema, SCALED_TIMING_KEYS, scaled } from './config.ts'
import { SCALED_SUPERVISOR_KEYS, SupervisorConfigSchema, scaledSupervisorConfig, supervisorConfigFromPlanTiming } from './supervisor/config.ts'
import { toPlanMs, toRealMs, UNSCALED } from './timing.ts'

describe('the one rule for time', () => {
  it('plan → real is max(1, round(plan × timeScale)); real → plan divides by it', () => {
    expect(toRealMs(30_000, 0.1)).toBe(3_000)
    expect(toRealMs(5, 0.1)).toBe(1) // 0.5 rounds to 1 — and never to a 0 ms "at once" timer
    expect(toRealMs(1, 0.01)).toBe(1)
    expect(toRealMs(0, 0.5)).toBe(1)
    expect(toRealMs(15, 0.1)).toBe(2)
    expect(toPlanMs(3_000, 0.1)).toBe(30_000)
    expect(toPlanMs(1234, 1)).toBe(1234)
  })

  it('every millisecond field of the plan timing is either scaled or listed once as unscaled', () => {
    const msFields = Object.keys(PlanTimingFields.shape).filter(k => k.endsWith('Ms'))
    for (const key of msFields) {
      const inScaled = (SCALED_TIMING_KEYS as readonly string[]).includes(key)
      const inUnscaled = key in UNSCALED
      expect(inScaled !== inUnscaled, `${key}: scaled ${inScaled}, unscaled ${inUnscaled}`).toBe(true)
    }
    const supervisorMs = Object.keys(SupervisorConfigSchema.shape).filter(k => k.endsWith('Ms'))
    for (const key of supervisorMs) {
      expect((SCALED_SUPERVISOR_KEYS as readonly string[]).includes(key) !== key in UNSCALED, key).toBe(true)
    }
  })

  it('nodes scale durations with the rule and keep the unscaled quantities', () => {
    const t = scaled(PlanTimingSchema.parse({ timeScale: 0.1 }))
    expect(t.healthCheckIntervalMs).toBe(3_000)
    expect(t.unreachableAlertMs).toBe(12_000)
    expect(t.healthPingTimeoutMs).toBe(5_000)
    expect(t.healthyLatencyMs).toBe(200)
    expect(t.discoveryVerificationDelayMs).toBe(3_000)
    expect(t.bidirectionalDiscoveryTimeoutMs).toBe(15_000)
  })

  it('the supervisor waits the same real 5 s ping deadline as the peers at any timeScale (issue 11)', () => {
    // Before: the supervisor scaled it (0.5 s at timeScale 0.1) while the peers waited 5 s.
    const timing = PlanTimingSchema.parse({ timeScale: 0.1 })
    const sup = scaledSupervisorConfig(supervisorConfigFromPlanTiming(timing))
    expect(sup.pingTimeoutMs).toBe(scaled(timing).healthPingTimeoutMs)
    expect(sup.pingTimeoutMs).toBe(5_000)
    expect(sup.checkIntervalMs).toBe(6_000)
    expect(sup.restartWindowMs).toBe(60_000)
    expect(sup.restartTimeoutMs).toBe(30_000)
  })
})
