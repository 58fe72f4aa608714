/**
 * @packageDocumentation
 *
 * The plan's tests as data, and the contract between runner and reports. A scenario file (YAML or JSON) is checked
 * by one zod schema (`ScenarioSchema`; the JSON Schema for editors is generated from it) and turned into a
 * `Scenario`: nodes (bootstraps, blackholes, external nodes, peer groups) and steps, each an `action` of
 * `StepSchema` (the README's steps table lists them all; test/readme.test.ts keeps it complete). The run record (`record.ts`: modes, step and assertion results, the discovery matrix
 * with its causes) and the toxic schema (`toxic-spec.ts`) live here too, below sim/ and reports/, so the runner
 * writes and the reports read one definition.
 *
 * @example
 * ```ts
 * import { loadScenarioFile, InputError } from 'chiral-sim/scenarios'
 *
 * try {
 *   const scenario = await loadScenarioFile('scenarios/plan/2-bootstrap-timeout.yaml')
 *   console.log(scenario.nodes.length, scenario.steps.length)
 * } catch (err) {
 *   if (err instanceof InputError) console.error(err.message)   // names the file, the field and the fix
 * }
 * ```
 */
export { ScenarioSchema, StepSchema, NodeSpecSchema, ConditionSchema, CheckSchema } from './schema.ts'
export type { Scenario, ScenarioInput, Step, NodeSpec } from './schema.ts'
export { loadScenarios, loadScenarioFile, loadBuiltin, parseScenario, InputError } from './load.ts'
export { scenarioJsonSchema } from './json-schema.ts'
export { AsymmetryCauseSchema, AsymmetrySchema, MatrixSchema, ModeSchema, RunRecordSchema, ScenarioRecordSchema } from './record.ts'
export type { Asymmetry, AsymmetryCause, Matrix, Mode, RunRecord, ScenarioRecord } from './record.ts'
export { parseToxicSpec, TOXIC_TYPES, ToxicSpec } from './toxic-spec.ts'
export type { ToxicSpecInput, ToxicStream, ToxicType } from './toxic-spec.ts'
