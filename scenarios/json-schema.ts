import { z } from 'zod'
import { ScenarioSchema } from './schema.ts'

/** The JSON Schema that editors use for scenario files, generated from the one zod schema. */
export function scenarioJsonSchema (): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ScenarioSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://chiral-sim.dev/scenario.schema.json',
    title: 'chiral-sim scenario'
  }
}
