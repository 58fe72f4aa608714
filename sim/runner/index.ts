/**
 * @packageDocumentation
 *
 * The runner: one scenario, start to record. `runScenario` builds the run's nodes (`context.ts`: identities, plan
 * timing with the run's time scale, fixed addresses), wires fault proxies on every link when the mode takes faults
 * (`link-wiring.ts`), hands each step to the handler registered for its action (`steps/`), and tears everything
 * down in reverse on success, failure, deadline or Ctrl-C. The run's state is split by who owns it: the nodes and
 * their lifecycle as types (`roster.ts`, `node-state.ts`; only `lifecycle.ts` moves a node between phases), the
 * evidence that becomes the scenario record (`evidence.ts`), and the links' faults (`fault-state.ts`). The
 * who-sees-whom matrix is `matrix.ts`, external (black box) nodes `external.ts`, the scenario's deadline
 * `deadline.ts`.
 *
 * @example
 * ```ts
 * import { loadScenarioFile } from '../../scenarios/load.ts'
 * import { createBackend } from '../backends/index.ts'
 * import { runScenario } from './index.ts'
 *
 * const scenario = await loadScenarioFile('scenarios/plan/1-normal-connection.yaml')
 * const record = await runScenario(scenario, { mode: 'tcp', seed: 42, createBackend })
 * console.log(record.status, record.assertions.filter(a => !a.passed))
 * ```
 */
export { runScenario, stepLabel, FAULT_MODES, SUPERVISED_MODES, type RunScenarioOptions } from './run-scenario.ts'
export { RunContext, ScenarioAbort } from './context.ts'
export { executeStep } from './steps/index.ts'
export type { StepHandler, StepHandlers, StepAction, StepOf } from './steps/handler.ts'
export type { NodeState, Phase } from './node-state.ts'
export type { RunNode } from './roster.ts'
