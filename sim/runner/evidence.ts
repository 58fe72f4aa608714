import type { NodeEvent, NodeEventBody } from '../../nodes/events.ts'
import type { AssertionResult, FaultRecord, Matrix, StepMatrix, StepRecord, SweepPoint } from '../../scenarios/record.ts'

/**
 * What the run observed and concluded, in the order it happened: events, assertions, step records, faults applied,
 * matrices, sweep points, recoveries. The scenario record is built from it alone (run-scenario.ts).
 */
export class Evidence {
  readonly events: NodeEvent[] = []
  readonly assertions: AssertionResult[] = []
  readonly steps: StepRecord[] = []
  /** The step being run: assertions and faults are stamped with it. */
  currentStep = 0
  /** The last matrix (what older reports read)… */
  matrix: Matrix | undefined
  /** …and every matrix step's, in order. */
  readonly matrices: StepMatrix[] = []
  readonly faults: FaultRecord[] = []
  readonly sweep: SweepPoint[] = []
  /** Checks a node could not make: it answered the command with not-supported (a peer of another implementation). */
  readonly uncheckable: Array<{ step: number, label: string, message: string }> = []
  readonly recoveries: Array<{ node: string, failedAt: number, detectedAt: number | null, recoveredAt: number | null, automatic: boolean }> = []
  /** Sequence numbers of the events the runner reports on a node's behalf (supervisors, external nodes). */
  readonly #emitted = new Map<string, number>()

  expect (a: { id: string, description: string, expected: unknown, actual: unknown, passed: boolean, planRef?: string | undefined }): boolean {
    this.assertions.push({
      id: a.id,
      description: a.description,
      ...(a.planRef != null ? { planRef: a.planRef } : {}),
      expected: typeof a.expected === 'string' ? a.expected : JSON.stringify(a.expected),
      actual: typeof a.actual === 'string' ? a.actual : JSON.stringify(a.actual),
      passed: a.passed,
      step: this.currentStep,
      at: Date.now()
    })
    return a.passed
  }

  record (ev: NodeEvent): void {
    this.events.push(ev)
  }

  /** An event the runner observed about `node` (which cannot report it itself), numbered per node. */
  emit (node: string, body: NodeEventBody, at: number = Date.now()): void {
    const seq = this.#emitted.get(node) ?? 0
    this.#emitted.set(node, seq + 1)
    this.record({ ...body, seq, time: at, node } as NodeEvent)
  }
}
