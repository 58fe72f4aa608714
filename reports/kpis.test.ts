import { describe, expect, it } from 'vitest'
import type { NodeEventBody } from '../nodes/events.ts'
import type { ScenarioRecordInput } from '../sim/record.ts'
import { connectDone, connectResult, discoveryStatus, FIXTURE_EXPECTED, fixtureRunRecord, healthCheck, makeRun, makeScenario, T0, timeline } from './fixtures.ts'
import { computeKpis, KPI_IDS, KpiSchema, meets } from './kpis.ts'

const kpisOf = (...scenarios: ScenarioRecordInput[]) => computeKpis(makeRun(scenarios))
const events = (rows: ReadonlyArray<readonly [number, string, NodeEventBody]>) => timeline(T0, rows)
const red: NodeEventBody = { type: 'health:status', from: 'green', to: 'red', address: '/memory/boot' }
const kill = (at: number, kind = 'kill', targets = ['boot']) =>
  ({ index: 1, kind, label: `${kind} boot`, startedAt: T0 + at, endedAt: T0 + at + 10, ok: true, targets })

describe('computeKpis on the fixture run', () => {
  const kpis = computeKpis(fixtureRunRecord())

  it('computes every rate from the hand-counted samples', () => {
    for (const id of ['connectionSuccessRate', 'bootstrapAvailability', 'discoverySuccessRate', 'autoRecoveryRate'] as const) {
      const { successes, samples } = FIXTURE_EXPECTED[id]
      expect(kpis[id].samples, id).toBe(samples)
      expect(kpis[id].value, id).toBeCloseTo((successes / samples) * 100, 9)
    }
  })

  it('judges each KPI against the plan target', () => {
    expect(kpis.connectionSuccessRate).toMatchObject({ value: 90, target: 95, comparator: '>', met: false, unit: '%', baseline: 70 })
    expect(kpis.bootstrapAvailability).toMatchObject({ target: 99.9, met: false, baseline: 95 })
    expect(kpis.discoverySuccessRate).toMatchObject({ target: 100, comparator: '>=', met: false })
    expect(kpis.autoRecoveryRate).toMatchObject({ value: 50, target: 90, met: false })
    expect(kpis.timeToFailureDetectionMs).toMatchObject({ value: 31_000, samples: 1, target: 60_000, comparator: '<', met: true, unit: 'ms' })
  })

  it('every KPI satisfies the schema and says what it counted', () => {
    for (const id of KPI_IDS) {
      expect(() => KpiSchema.parse(kpis[id])).not.toThrow()
      expect(kpis[id].id).toBe(id)
      expect(kpis[id].detail.length).toBeGreaterThan(10)
    }
    expect(kpis.connectionSuccessRate.detail).toContain('9/10')
    expect(kpis.connectionSuccessRate.detail).toContain('expected-failure')
    expect(kpis.connectionSuccessRate.detail).toContain('invalid')
  })
})

describe('KPIs with nothing to measure', () => {
  it('are null, not met, with 0 samples — never met', () => {
    const kpis = kpisOf(makeScenario('skipped', { status: 'skipped', reason: 'needs docker' }))
    for (const id of KPI_IDS) {
      expect(kpis[id], id).toMatchObject({ value: null, met: null, samples: 0 })
    }
    expect(kpis.autoRecoveryRate.detail).toMatch(/no bootstrap failure/)
    expect(kpis.timeToFailureDetectionMs.detail).toMatch(/no stop, kill or outage fault/)
  })

  it('a KPI claiming a value without samples is rejected by the schema', () => {
    const kpis = kpisOf()
    expect(KpiSchema.safeParse({ ...kpis.connectionSuccessRate, value: 100, met: true }).success).toBe(false)
    expect(KpiSchema.safeParse({ ...kpis.connectionSuccessRate, met: true }).success).toBe(false)
  })

  it('an empty run measures nothing', () => {
    for (const k of Object.values(kpisOf())) expect(k.met).toBeNull()
  })
})

describe('connectionSuccessRate', () => {
  it('is the share of successful connects (connect:done), retries and failover included', () => {
    const kpis = kpisOf(makeScenario('a', {
      events: events([[1, 'peerA', connectDone(true)], [2, 'peerB', connectDone(false, 3)],
        [3, 'peerC', connectResult(1, 'timeout', 5)], [4, 'peerC', connectResult(2, 'success', 5)], [5, 'peerC', connectDone(true, 2)],
        [6, 'peerD', connectDone(true)]])
    }))
    // peerC's failed first attempt is not a failed connect: failover got it through.
    expect(kpis.connectionSuccessRate).toMatchObject({ value: 75, samples: 4, met: false })
  })

  it('excludes scenarios tagged expected-failure and invalid scenarios', () => {
    const ok = makeScenario('ok', { events: events([[1, 'peerA', connectDone(true)]]) })
    const dead = makeScenario('dead', { tags: ['expected-failure'], events: events([[1, 'peerA', connectDone(false)]]) })
    const bypassed = makeScenario('bypassed', { invalid: 'proxy bypassed', events: events([[1, 'peerA', connectDone(false)]]) })
    expect(kpisOf(ok, dead, bypassed).connectionSuccessRate).toMatchObject({ value: 100, samples: 1, met: true })
    expect(kpisOf(dead).connectionSuccessRate).toMatchObject({ value: null, samples: 0, met: null })
  })

  it('needs strictly more than 95 %', () => {
    expect(meets(95, 95, '>')).toBe(false)
    expect(meets(95.01, 95, '>')).toBe(true)
    expect(meets(100, 100, '>=')).toBe(true)
    expect(meets(60_000, 60_000, '<')).toBe(false)
  })
})

describe('timeToFailureDetectionMs', () => {
  const detectionScenario = (timeScale: number, detectAt: number, fields: Partial<ScenarioRecordInput> = {}) => makeScenario('kill', {
    timeScale, endedAt: T0 + 20_000, durationMs: 20_000, steps: [kill(1_000)],
    events: events([[detectAt, 'peerA', red]]), ...fields
  })

  it('divides measured durations by the scenario timeScale to give plan time', () => {
    expect(kpisOf(detectionScenario(1, 2_000)).timeToFailureDetectionMs).toMatchObject({ value: 1_000, samples: 1, met: true })
    expect(kpisOf(detectionScenario(0.5, 2_000)).timeToFailureDetectionMs.value).toBe(2_000)
    // 7 s measured at timeScale 0.1 is 70 s of plan time: over the 60 s target.
    const compressed = kpisOf(detectionScenario(0.1, 8_000)).timeToFailureDetectionMs
    expect(compressed).toMatchObject({ value: 70_000, met: false })
    expect(compressed.detail).toMatch(/timeScale/)
    expect(compressed.detail).toContain('7.0s measured at timeScale 0.1')
  })

  it('takes the worst case over all failures, each scaled by its own scenario', () => {
    const kpis = kpisOf(detectionScenario(1, 3_000), detectionScenario(0.1, 3_000))
    expect(kpis.timeToFailureDetectionMs).toMatchObject({ value: 20_000, samples: 2, met: true })
  })

  it('uses the first red status or failed attempt on a peer after the step, not before it, and not on the bootstrap', () => {
    const kpis = kpisOf(makeScenario('kill', {
      timeScale: 1, endedAt: T0 + 20_000, steps: [kill(1_000)],
      events: events([[500, 'peerA', red], [1_200, 'boot', red], [1_400, 'peerB', connectResult(1, 'refused', 3)], [1_900, 'peerA', red]])
    }))
    expect(kpis.timeToFailureDetectionMs.value).toBe(400)
  })

  it('counts stop and outage faults on a bootstrap, not latency faults or faults on peer links', () => {
    const fault = (kind: string) => ({ step: 1, link: 'boot<->peerA', kind, attributes: {}, appliedAt: T0 + 1_000, removedAt: null })
    const withFault = (kind: string, targets = ['boot']) => makeScenario(`fault-${kind}`, {
      timeScale: 1, steps: [kill(1_000, 'fault', targets)], faults: [fault(kind)], events: events([[1_500, 'peerA', red]])
    })
    expect(kpisOf(withFault('down')).timeToFailureDetectionMs).toMatchObject({ value: 500, samples: 1 })
    expect(kpisOf(withFault('timeout')).timeToFailureDetectionMs.samples).toBe(1)
    expect(kpisOf(withFault('latency')).timeToFailureDetectionMs.samples).toBe(0)
    expect(kpisOf(withFault('down', ['peerA', 'peerB'])).timeToFailureDetectionMs.samples).toBe(0)
    const stop = makeScenario('stop', { timeScale: 1, steps: [kill(1_000, 'stop')], events: events([[1_250, 'peerA', red]]) })
    expect(kpisOf(stop).timeToFailureDetectionMs.value).toBe(250)
  })

  it('an undetected failure is not met, and counts the observed window as a lower bound', () => {
    const kpis = kpisOf(detectionScenario(1, 500))
    expect(kpis.timeToFailureDetectionMs).toMatchObject({ value: 19_000, samples: 1, met: false })
    expect(kpis.timeToFailureDetectionMs.detail).toMatch(/never detected/)
  })

  it('ignores a kill step that failed', () => {
    const failedKill = { ...kill(1_000), ok: false, error: 'no such node' }
    expect(kpisOf(makeScenario('k', { steps: [failedKill] })).timeToFailureDetectionMs.samples).toBe(0)
  })
})

describe('bootstrapAvailability', () => {
  it('is the share of reachable health checks', () => {
    const kpis = kpisOf(makeScenario('h', {
      events: events([[1, 'peerA', healthCheck(true, 10, T0)], [2, 'peerA', healthCheck(true, 300, T0)], [3, 'peerA', healthCheck(false, null, T0)],
        [4, 'peerB', healthCheck(true, 10, T0)]])
    }))
    expect(kpis.bootstrapAvailability).toMatchObject({ value: 75, samples: 4, met: false })
    const perfect = kpisOf(makeScenario('h', { events: events([[1, 'peerA', healthCheck(true, 10, T0)]]) }))
    expect(perfect.bootstrapAvailability).toMatchObject({ value: 100, met: true })
  })
})

describe('discoverySuccessRate', () => {
  it('counts verified statuses (first peer included) and bidirectional assertions', () => {
    const kpis = kpisOf(makeScenario('d', {
      events: events([[1, 'peerA', discoveryStatus('verified')], [2, 'peerB', discoveryStatus('verified', ['peerA'])], [3, 'peerC', discoveryStatus('partial')]]),
      assertions: [
        { id: 'bidirectional-a-b', description: '', expected: 'x', actual: 'x', passed: true, at: T0 },
        { id: 'bidirectional-b-a', description: '', expected: 'x', actual: 'y', passed: false, at: T0 },
        { id: 'health-green', description: '', expected: 'x', actual: 'y', passed: false, at: T0 }
      ]
    }))
    expect(kpis.discoverySuccessRate).toMatchObject({ value: 60, samples: 5, met: false })
  })

  it('needs 100 %, and leaves out scenarios whose bootstrap is dead on purpose', () => {
    const ok = makeScenario('ok', { events: events([[1, 'peerA', discoveryStatus('verified')]]) })
    const dead = makeScenario('dead', { tags: ['expected-failure'], events: events([[1, 'peerA', discoveryStatus('failed')]]) })
    expect(kpisOf(ok, dead).discoverySuccessRate).toMatchObject({ value: 100, samples: 1, met: true })
  })
})

describe('autoRecoveryRate', () => {
  const recovery = (automatic: boolean, recoveredAt: number | null) => ({ node: 'boot', failedAt: T0, detectedAt: T0 + 1, recoveredAt, automatic })

  it('counts only automatic recoveries that completed', () => {
    const kpis = kpisOf(makeScenario('r', {
      recoveries: [recovery(true, T0 + 5), recovery(true, T0 + 5), recovery(true, null), recovery(false, T0 + 9), recovery(true, T0 + 7),
        recovery(true, T0 + 7), recovery(true, T0 + 7), recovery(true, T0 + 7), recovery(true, T0 + 7), recovery(true, T0 + 7)]
    }))
    expect(kpis.autoRecoveryRate).toMatchObject({ value: 80, samples: 10, met: false })
    const allGood = kpisOf(makeScenario('r', { recoveries: Array.from({ length: 10 }, () => recovery(true, T0 + 5)) }))
    expect(allGood.autoRecoveryRate).toMatchObject({ value: 100, met: true })
  })
})
