export { ScenarioSchema, StepSchema, NodeSpecSchema, ConditionSchema, CheckSchema } from './schema.ts'
export type { Scenario, ScenarioInput, Step, NodeSpec } from './schema.ts'
export { loadScenarios, loadScenarioFile, loadBuiltin, parseScenario, InputError } from './load.ts'
export { scenarioJsonSchema } from './json-schema.ts'
