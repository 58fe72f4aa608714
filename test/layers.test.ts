import { describe, expect, it } from 'vitest'
import { importCycles, importGraph, missingTargets, upwardImports } from './imports.ts'

// The layering rule of the developers' guide, checked on the real tree: nodes → scenarios → sim → reports → cli,
// no import running back up, no cycle between files. Tests may import any layer.
describe('the import graph', () => {
  const graph = importGraph()

  it('reads the whole tree', () => {
    expect(graph.size).toBeGreaterThan(100)
    expect(graph.get('sim/runner/run-scenario.ts')).toContain('scenarios/schema.ts')
  })

  it('has no import running back up a layer', () => {
    expect(upwardImports(graph)).toEqual([])
  })

  it('has no import cycle between files', () => {
    expect(importCycles(graph)).toEqual([])
  })

  it('has no import of a file that is not there', () => {
    expect(missingTargets(graph)).toEqual([])
  })
})

describe('the checks themselves', () => {
  const g = (edges: Record<string, string[]>): Map<string, string[]> => new Map(Object.entries(edges))

  it('finds an upward import, one into bench/ or test/, and one of a test helper; not a test reaching up', () => {
    expect(upwardImports(g({
      'nodes/a.ts': ['scenarios/b.ts', 'nodes/c.ts'],
      'scenarios/b.ts': ['nodes/c.ts'],
      'sim/d.ts': ['bench/e.ts', 'sim/faults/test-support.ts'],
      'reports/f.ts': ['cli/main.ts'],
      'nodes/a.test.ts': ['sim/d.ts'],
      'bench/e.ts': ['cli/main.ts']
    }))).toEqual(['nodes/a.ts → scenarios/b.ts', 'sim/d.ts → bench/e.ts', 'sim/d.ts → sim/faults/test-support.ts', 'reports/f.ts → cli/main.ts'])
  })

  it('finds a cycle through several files and a file importing itself, once each', () => {
    expect(importCycles(g({
      'sim/a.ts': ['sim/b.ts'],
      'sim/b.ts': ['sim/c.ts'],
      'sim/c.ts': ['sim/a.ts', 'nodes/x.ts'],
      'nodes/x.ts': ['nodes/x.ts'],
      'nodes/y.ts': ['nodes/x.ts']
    }))).toEqual(['nodes/x.ts', 'sim/a.ts ↔ sim/b.ts ↔ sim/c.ts'])
  })
})
