// The import graph of the repository's own TypeScript files, for the layering test (test/layers.test.ts).
// Every relative import counts, type-only ones too: a type that runs back up a layer is still an arrow back up.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '..')

/**
 * The layers, lowest first: a folder may import its own layer and the ones before it. The CLI comes last: it runs
 * scenarios (sim) and writes their reports, and nothing imports it.
 */
export const LAYERS = ['nodes', 'scenarios', 'sim', 'reports', 'cli'] as const
/** Folders outside the order (benchmarks, test helpers): they may import any layer, and no layer imports them. */
export const FREE = ['bench', 'test'] as const

/** Tests (and helpers only tests import) may reach any layer: an integration test of scenarios runs them through sim. */
export const isTest = (file: string): boolean => /(\.test\.ts|(^|\/)test-support\.ts)$/.test(file)

const SPECIFIER = /(?:^|[\s;}])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm

function tsFiles (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...tsFiles(path))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

/** file (relative to the repo root) → the repo files it imports (relative to the root). */
export function importGraph (): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const top of [...LAYERS, ...FREE]) {
    for (const file of tsFiles(join(ROOT, top))) {
      // Comment blocks go first: the documented fronts show imports in their examples.
      const source = readFileSync(file, 'utf8').replace(/^\s*\/\*[\s\S]*?\*\//gm, '').replace(/^\s*\/\/.*$/gm, '')
      const targets: string[] = []
      for (const m of source.matchAll(SPECIFIER)) {
        const spec = m[1] ?? m[2] ?? m[3]
        if (spec === undefined || !spec.startsWith('.')) continue
        targets.push(relative(ROOT, resolve(dirname(file), spec)))
      }
      graph.set(relative(ROOT, file), targets)
    }
  }
  return graph
}

const layerOf = (file: string): string => file.split('/')[0] ?? ''

/** "from → to" for every import that runs up the layer order, or into bench/ or test/. */
export function upwardImports (graph: Map<string, string[]>): string[] {
  const rank = (file: string): number => (LAYERS as readonly string[]).indexOf(layerOf(file))
  const bad: string[] = []
  for (const [from, targets] of graph) {
    const fromRank = rank(from)
    if (fromRank < 0 || isTest(from)) continue
    for (const to of targets) {
      const toRank = rank(to)
      if (toRank > fromRank || (toRank < 0 && (FREE as readonly string[]).includes(layerOf(to))) || isTest(to)) bad.push(`${from} → ${to}`)
    }
  }
  return bad
}

/** Each import cycle between files once, as "a → b → … → a" (Tarjan's strongly connected components). */
export function importCycles (graph: Map<string, string[]>): string[] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++
    stack.push(v); onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)) }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do { w = stack.pop()!; onStack.delete(w); component.push(w) } while (w !== v)
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component.sort())
    }
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v)
  return components.map(c => c.join(' ↔ '))
}

/** Imports that name a file which does not exist (a move that left a caller behind). */
export function missingTargets (graph: Map<string, string[]>): string[] {
  const bad: string[] = []
  for (const [from, targets] of graph) for (const to of targets) if (!graph.has(to) && !/\.(json|mjs|js)$/.test(to)) bad.push(`${from} → ${to}`)
  return bad
}

if (import.meta.main) {
  const graph = importGraph()
  console.log('upward:', upwardImports(graph))
  console.log('cycles:', importCycles(graph))
  console.log('missing:', missingTargets(graph))
}
