import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { BUILTIN_DIR, InputError, loadBuiltin, parseScenario } from './load.ts'
import { scenarioJsonSchema } from './json-schema.ts'

const minimal = `
name: t
title: T
nodes: [{ role: bootstrap, name: boot }, { role: peer, name: A }]
steps:
  - { action: start, nodes: [boot, A] }
  - { action: connect, nodes: [A], expect: { success: true } }
`

function problem (yaml: string): string {
  try {
    parseScenario(yaml, 'x.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(InputError)
    return (err as Error).message
  }
  throw new Error('expected the scenario to be rejected')
}

describe('scenario schema', () => {
  it('accepts every built-in scenario', async () => {
    const all = await loadBuiltin()
    expect(all.length).toBeGreaterThanOrEqual(10)
    expect(new Set(all.map(s => s.scenario.planTest).filter(Boolean))).toEqual(new Set([1, 2, 3, 4, 5, 6]))
  })

  it('fills in the defaults of a minimal scenario', () => {
    const s = parseScenario(minimal, 'x.yaml')
    expect(s.timeScale).toBe(0.1)
    expect(s.timeoutMs).toBe(120_000)
  })

  it('names the field of an unknown key', () => {
    expect(problem(minimal.replace('title: T', 'title: T\ncolour: red'))).toMatch(/x\.yaml: invalid scenario[\s\S]*unknown field\(s\) "colour"/)
  })

  it('names the field and range of a value out of range', () => {
    const msg = problem(minimal.replace('expect: { success: true }', 'timeoutMs: 40000'))
    expect(msg).toContain('steps[1].timeoutMs')
    expect(msg).toMatch(/30000/)
  })

  it('rejects an unknown node reference with the declared names', () => {
    expect(problem(minimal.replace('nodes: [A], expect', 'nodes: [Z], expect'))).toMatch(/steps\[1\]\.nodes\[0\]: unknown node "Z"; declared nodes: boot, A/)
  })

  it('rejects an unknown step action', () => {
    expect(problem(minimal.replace('action: connect', 'action: teleport'))).toContain('steps[1].action')
  })

  it('rejects a search for a file nobody shared', () => {
    expect(problem(`${minimal}  - { action: search, node: A, file: nope }\n`)).toMatch(/steps\[2\]\.file: file "nope" is not shared/)
  })

  it('rejects malformed YAML in one line', () => {
    expect(problem('name: [unclosed')).toMatch(/^x\.yaml: not valid YAML/)
  })

  it('a plan timing below the plan range is refused with the plan reason', () => {
    expect(problem(minimal.replace('title: T', 'title: T\ntiming: { connectionTimeoutMs: 1000 }'))).toMatch(/timing\.connectionTimeoutMs: connectionTimeoutMs must be at least 5000/)
  })

  it('the published JSON Schema is the one generated from the zod schema', async () => {
    const published = JSON.parse(await readFile(path.join(BUILTIN_DIR, 'scenario.schema.json'), 'utf8'))
    expect(published).toEqual(scenarioJsonSchema())
  })
})
