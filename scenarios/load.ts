import { readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'
import type { z } from 'zod'
import { ScenarioSchema, type Scenario } from './schema.ts'

/** Bad input: a message for people (file, field, fix), never a stack trace; the CLI exits 2 with it. */
export class InputError extends Error {
  override readonly name = 'InputError'
}

export const BUILTIN_DIR = path.dirname(fileURLToPath(import.meta.url))
const EXTENSIONS = ['.yaml', '.yml', '.json']

function fieldPath (p: ReadonlyArray<PropertyKey>): string {
  return p.length === 0 ? '(top level)' : p.map(k => typeof k === 'number' ? `[${k}]` : `.${String(k)}`).join('').replace(/^\./, '')
}

/** One paragraph naming the file, every failing field and what to do about it. */
export function formatIssues (file: string, error: z.ZodError): string {
  const lines = error.issues.slice(0, 8).map(issue => {
    let hint = issue.message
    if (issue.code === 'unrecognized_keys') hint = `unknown field(s) ${issue.keys.map(k => `"${k}"`).join(', ')}: remove or rename (see scenarios/scenario.schema.json)`
    if (issue.code === 'invalid_union' && 'discriminator' in issue) hint = `${issue.message}; "action" must be one of the step kinds listed in scenarios/scenario.schema.json`
    return `  ${fieldPath(issue.path)}: ${hint}`
  })
  const more = error.issues.length > 8 ? `\n  … and ${error.issues.length - 8} more` : ''
  return `${file}: invalid scenario\n${lines.join('\n')}${more}`
}

export function parseScenario (text: string, file: string): Scenario {
  let data: unknown
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true })
  } catch (err) {
    throw new InputError(`${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`)
  }
  const result = ScenarioSchema.safeParse(data)
  if (!result.success) throw new InputError(formatIssues(file, result.error))
  return result.data
}

export async function loadScenarioFile (file: string): Promise<Scenario> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new InputError(`${file}: cannot read the scenario file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path`)
  }
  return parseScenario(text, file)
}

/** Files and folders (searched recursively) → scenario files, sorted for a stable order. */
export async function findScenarioFiles (paths: string[]): Promise<string[]> {
  const out: string[] = []
  for (const p of paths) {
    let s
    try {
      s = await stat(p)
    } catch {
      throw new InputError(`${p}: no such file or folder; give scenario files (.yaml, .yml, .json) or folders holding them`)
    }
    if (s.isDirectory()) {
      const entries = await readdir(p, { recursive: true })
      out.push(...entries.filter(e => EXTENSIONS.includes(path.extname(e)) && !e.endsWith('.schema.json')).map(e => path.join(p, e)).sort())
    } else if (EXTENSIONS.includes(path.extname(p))) {
      out.push(p)
    } else {
      throw new InputError(`${p}: not a scenario file; use .yaml, .yml or .json`)
    }
  }
  if (out.length === 0) throw new InputError(`no scenario files found in ${paths.join(', ')}`)
  return [...new Set(out)]
}

export interface LoadedScenario { file: string, scenario: Scenario }

export async function loadScenarios (paths: string[]): Promise<LoadedScenario[]> {
  const files = await findScenarioFiles(paths)
  const loaded = await Promise.all(files.map(async file => ({ file, scenario: await loadScenarioFile(file) })))
  const seen = new Map<string, string>()
  for (const { file, scenario } of loaded) {
    const other = seen.get(scenario.name)
    if (other != null) throw new InputError(`${file}: scenario name "${scenario.name}" is already used by ${other}; names must be unique`)
    seen.set(scenario.name, file)
  }
  return loaded
}

export const BUILTIN_FOLDERS = ['plan', 'asymmetry', 'faults', 'external', 'release'] as const

/**
 * The built-in suite: the plan's six tests, the asymmetry reproductions, the Toxiproxy fault scenarios and the
 * external-bootstrap scenarios (both skipped, with the reason, in memory mode) and the release profile.
 */
export async function loadBuiltin (folders: ReadonlyArray<typeof BUILTIN_FOLDERS[number]> = BUILTIN_FOLDERS): Promise<LoadedScenario[]> {
  const existing = []
  for (const f of folders) {
    const dir = path.join(BUILTIN_DIR, f)
    if ((await stat(dir).catch(() => null))?.isDirectory() === true && (await readdir(dir)).length > 0) existing.push(dir)
  }
  return await loadScenarios(existing)
}
