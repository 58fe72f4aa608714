import { z } from 'zod'
import type { AssertionResult, ScenarioRecord, StepRecord } from '../scenarios/record.ts'

/**
 * A scenario's outcome as every report states it. `invalid` overrides the recorded status: a run that cannot be
 * trusted (traffic bypassed a faulted link's proxy) must never be counted as passed — nor as a genuine failure.
 */
export const ScenarioOutcomeSchema = z.enum(['passed', 'failed', 'error', 'skipped', 'invalid'])
export type ScenarioOutcome = z.infer<typeof ScenarioOutcomeSchema>

export function scenarioOutcome (scenario: Pick<ScenarioRecord, 'status' | 'invalid'>): ScenarioOutcome {
  return scenario.invalid != null ? 'invalid' : scenario.status
}

/** Outcomes somebody has to look at; they are shown first and open in the HTML page. */
export function isProblem (outcome: ScenarioOutcome): boolean {
  return outcome === 'failed' || outcome === 'error' || outcome === 'invalid'
}

const DISPLAY_ORDER: Record<ScenarioOutcome, number> = { failed: 0, error: 1, invalid: 2, passed: 3, skipped: 4 }

/** Problems first; the sort is stable, so the run order is kept within each outcome. */
export function problemsFirst<T extends Pick<ScenarioRecord, 'status' | 'invalid'>> (scenarios: readonly T[]): T[] {
  return [...scenarios].sort((a, b) => DISPLAY_ORDER[scenarioOutcome(a)] - DISPLAY_ORDER[scenarioOutcome(b)])
}

export const failedAssertions = (scenario: ScenarioRecord): AssertionResult[] => scenario.assertions.filter(a => !a.passed)
export const failedSteps = (scenario: ScenarioRecord): StepRecord[] => scenario.steps.filter(s => !s.ok)

export const OUTCOME_SYMBOL: Record<ScenarioOutcome, string> = {
  passed: '✔', failed: '✘', error: '✘', skipped: '○', invalid: '⚠'
}
