import type { Asymmetry, ScenarioRecord, StepRecord } from '../scenarios/record.ts'
import { failedAssertions, failedSteps } from './outcome.ts'

/**
 * Where to look first in a scenario that did not pass, the same in report.html and in the CI summary: the step
 * that failed (or made the first failing check), the nodes it acted on, the diagnosed asymmetries, and which nodes
 * logged an error or left output behind.
 */
export interface FailureFacts {
  step: StepRecord | undefined
  asymmetries: Asymmetry[]
  /** Nodes with an error-level log event. */
  errored: string[]
  /** Nodes whose own output is attached (process, container, external). */
  withOutput: string[]
}

export function failureFacts (s: ScenarioRecord): FailureFacts {
  const assertion = failedAssertions(s)[0]
  return {
    step: failedSteps(s)[0] ?? (assertion?.step != null ? s.steps.find(st => st.index === assertion.step) : undefined),
    asymmetries: s.matrix?.asymmetries ?? [],
    errored: [...new Set(s.events.filter(e => e.type === 'log' && e.level === 'error').map(e => e.node))],
    withOutput: s.nodes.filter(node => node.output !== undefined).map(node => node.name)
  }
}
