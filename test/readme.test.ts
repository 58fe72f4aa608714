import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConditionSchema, StepSchema } from '../scenarios/schema.ts'

// The README is the scenario author's reference: every step and every wait condition the schema accepts is named
// there, so a new one cannot land undocumented.
const README = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8')

const stepActions = (): string[] => StepSchema.options.map(o => o.shape.action.value)

describe('README', () => {
  it('names every step action', () => {
    const actions = stepActions()
    expect(actions).toEqual(expect.arrayContaining(['start', 'connect', 'wait', 'fault', 'heal', 'sweep', 'churn', 'matrix']))
    expect(actions.filter(a => !README.includes(`\`${a}\``))).toEqual([])
  })

  it('names every wait condition', () => {
    const conditions = ConditionSchema.options.map(o => Object.keys(o.shape)[0]!)
    expect(conditions).toEqual(expect.arrayContaining(['reachable', 'unreachable', 'sees']))
    expect(conditions.filter(c => !README.includes(`\`${c}\``))).toEqual([])
  })

  it('links nothing outside the repository', () => {
    expect(README.match(/\]\(\.\.\/[^)]*\)/g) ?? []).toEqual([])
  })
})
