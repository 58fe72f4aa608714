import { isUtf8 } from 'node:buffer'
import { readFile, readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML, { LineCounter } from 'yaml'
import type { z } from 'zod'
import { ScenarioSchema, type Scenario } from './schema.ts'
import { scenarioJsonSchema } from './json-schema.ts'
import { didYouMean } from '../nodes/suggest.ts'

/** Bad input: a message for people (file, field, fix), never a stack trace; the CLI exits 2 with it. */
export class InputError extends Error {
  override readonly name = 'InputError'
}

export const BUILTIN_DIR = path.dirname(fileURLToPath(import.meta.url))
const EXTENSIONS = ['.yaml', '.yml', '.json']

/**
 * The largest scenario file accepted. The built-in ones are under 4 KiB; a scenario is a description of a test, not
 * data, and whatever it says is copied into every report.
 */
export const MAX_SCENARIO_BYTES = 1024 * 1024

function fieldPath (p: ReadonlyArray<PropertyKey>): string {
  return p.length === 0 ? '(top level)' : p.map(k => typeof k === 'number' ? `[${k}]` : `.${String(k)}`).join('').replace(/^\./, '')
}

type Issue = z.core.$ZodIssue

/**
 * A union of one-key objects (a condition, a check) fails on every branch. The branch that accepted the key is the
 * one the author meant: report its problems. With none, say which keys are allowed.
 */
function unionIssues (issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || 'discriminator' in issue || issue.errors.length === 0) return [issue]
  const keyed = (b: Issue[]): boolean => !b.some(i => i.code === 'unrecognized_keys' && i.path.length === 0)
  const fits = issue.errors.filter(keyed)
  if (fits.length === 1) return fits[0]!.flatMap(i => unionIssues({ ...i, path: [...issue.path, ...i.path] } as Issue))
  const keys = issue.errors.map(b => b.find(i => i.code === 'invalid_type' && i.path.length === 1 && /received undefined/.test(i.message))?.path[0])
  if (keys.some(k => k == null)) return [issue]
  return [{ ...issue, message: `expected exactly one of ${keys.map(k => `"${String(k)}"`).join(', ')}` }]
}

/** The line (1-based) where the value at a field path is written, or its nearest written ancestor's. */
export type LineOf = (path: ReadonlyArray<PropertyKey>) => number | undefined

/** Locates fields in a scenario's text; JSON is YAML, so one reader serves both. */
export function lineLocator (text: string): LineOf {
  const lineCounter = new LineCounter()
  const doc = YAML.parseDocument(text, { lineCounter })
  return path => {
    for (let n = path.length; n >= 0; n--) {
      const node: unknown = doc.getIn(path.slice(0, n) as unknown[], true)
      const range = (node as { range?: [number, number, number] } | undefined)?.range
      if (range != null) return lineCounter.linePos(range[0]).line
    }
    return undefined
  }
}

let knownFields: Set<string> | undefined
/** Every field name a scenario can have, anywhere (from the generated JSON Schema), for "did you mean". */
function fieldNames (): Set<string> {
  if (knownFields != null) return knownFields
  const names = new Set<string>()
  const walk = (value: unknown): void => {
    if (value == null || typeof value !== 'object') return
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'properties' && inner != null && typeof inner === 'object') for (const name of Object.keys(inner)) names.add(name)
      walk(inner)
    }
  }
  walk(scenarioJsonSchema())
  knownFields = names
  return names
}

/** One paragraph naming the file, every failing field (and its line, when known) and what to do about it. */
export function formatIssues (file: string, error: z.ZodError, lineOf?: LineOf): string {
  const issues = error.issues.flatMap(unionIssues)
  const lines = issues.slice(0, 8).map(issue => {
    let hint = issue.message
    if (issue.code === 'unrecognized_keys') hint = `unknown field(s) ${issue.keys.map(k => `"${k}"${didYouMean(k, [...fieldNames()].filter(n => n !== k))}`).join(', ')}: remove or rename (see scenarios/scenario.schema.json)`
    if (issue.code === 'invalid_union' && 'discriminator' in issue) hint = `${issue.message}; "action" must be one of the step kinds listed in scenarios/scenario.schema.json`
    const line = lineOf?.(issue.path)
    return `  ${fieldPath(issue.path)}: ${hint}${line != null ? ` (line ${line})` : ''}`
  })
  const more = issues.length > 8 ? `\n  … and ${issues.length - 8} more` : ''
  return `${file}: invalid scenario\n${lines.join('\n')}${more}`
}

/** The line with the problem and a caret under its column (both 1-based), as compilers show it. */
export function codeFrame (text: string, line: number, col: number): string {
  const source = (text.split(/\r?\n/)[line - 1] ?? '').replace(/\t/g, ' ')
  const gutter = String(line).length
  const shown = source.length > 120 ? `${source.slice(Math.max(0, col - 60), col + 60)}` : source
  const caretAt = source.length > 120 ? Math.min(col - 1, 59) : col - 1
  return `  ${String(line)} | ${shown}\n  ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, caretAt))}^`
}

/**
 * Where JSON text stops being JSON (a UTF-16 offset), or -1. Node's JSON.parse says where only for some errors, and
 * not in every Node version.
 */
export function jsonErrorOffset (text: string): number {
  let i = 0
  const ws = (): void => { while (/[ \t\n\r]/.test(text[i] ?? '')) i++ }
  const fail = (): never => { throw i }
  const literal = (word: string): void => { if (text.startsWith(word, i)) i += word.length; else fail() }
  const string = (): void => {
    i++
    while (text[i] !== '"') {
      if (i >= text.length || text.charCodeAt(i) < 0x20) fail()
      if (text[i] === '\\') {
        i++
        if (text[i] === 'u') { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail(); i += 4 } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) fail()
      }
      i++
    }
    i++
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']'
      i++
      ws()
      if (text[i] === close) { i++; return }
      while (true) {
        if (c === '{') { ws(); if (text[i] !== '"') fail(); string(); ws(); if (text[i] !== ':') fail(); i++ }
        value()
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i] === close) { i++; return }
        fail()
      }
    }
    if (c === '"') return string()
    if (c === 't') return literal('true')
    if (c === 'f') return literal('false')
    if (c === 'n') return literal('null')
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400))
    if (m == null || m[0] === '' || m[0] === '-') fail()
    i += m![0].length
  }
  try {
    value()
    ws()
    if (i < text.length) fail()
    return -1
  } catch (at) {
    if (typeof at !== 'number') throw at
    return at
  }
}

function lineCol (text: string, offset: number): { line: number, col: number } {
  const before = text.slice(0, offset).split('\n')
  return { line: before.length, col: before.at(-1)!.length + 1 }
}

function syntaxError (text: string, file: string, err: Error): InputError {
  const json = file.endsWith('.json')
  const offset = json ? jsonErrorOffset(text) : -1
  const at = offset >= 0 ? lineCol(text, Math.min(offset, text.length)) : (err as { linePos?: Array<{ line: number, col: number }> }).linePos?.[0]
  const message = json
    ? (offset >= text.length ? 'unexpected end of the file' : offset >= 0 ? `unexpected ${JSON.stringify(text[offset])}` : err.message.split('\n')[0]!)
    : err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
  if (at == null) return new InputError(`${file}: not valid ${json ? 'JSON' : 'YAML'}: ${message}`)
  return new InputError(`${file}:${at.line}:${at.col}: not valid ${json ? 'JSON' : 'YAML'}: ${message}\n${codeFrame(text, at.line, at.col)}`)
}

export function parseScenario (text: string, file: string): Scenario {
  let data: unknown
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true })
  } catch (err) {
    throw syntaxError(text, file, err as Error)
  }
  const result = ScenarioSchema.safeParse(data)
  if (!result.success) throw new InputError(formatIssues(file, result.error, lineLocator(text)))
  return result.data
}

/** The offset of the first byte that is not part of valid UTF-8. */
function firstInvalidUtf8 (bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i]!
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0
    if (len === 0 || i + len > bytes.length || !isUtf8(bytes.subarray(i, i + len))) return i
    i += len
  }
  return -1
}

/** A scenario file's text: at most MAX_SCENARIO_BYTES of UTF-8 (a BOM is dropped), never silently repaired. */
export async function readScenarioText (file: string): Promise<string> {
  let bytes: Buffer
  try {
    const size = (await stat(file)).size
    if (size > MAX_SCENARIO_BYTES) {
      throw new InputError(`${file}: the scenario file is ${size} bytes; the limit is ${MAX_SCENARIO_BYTES} (1 MiB): a scenario describes a test, generate large data in a step (e.g. share with sizeBytes) instead`)
    }
    bytes = await readFile(file)
  } catch (err) {
    if (err instanceof InputError) throw err
    throw new InputError(`${file}: cannot read the scenario file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check the path`)
  }
  if (!isUtf8(bytes)) {
    const offset = firstInvalidUtf8(bytes)
    const line = bytes.subarray(0, offset).toString('utf8').split('\n').length
    throw new InputError(`${file}: not UTF-8: invalid byte 0x${bytes[offset]?.toString(16).padStart(2, '0')} at byte offset ${offset} (line ${line}); save the file as UTF-8`)
  }
  const text = bytes.toString('utf8')
  return text.startsWith('\uFEFF') ? text.slice(1) : text
}

export async function loadScenarioFile (file: string): Promise<Scenario> {
  return parseScenario(await readScenarioText(file), file)
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
