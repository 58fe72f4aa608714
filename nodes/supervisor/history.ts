import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { SupervisorHistorySchema, type SupervisorHistory } from './schemas.ts'

/** Bounds the file: a crash-looping node over months must not grow it without limit. The window needs only 4. */
const KEEP = 1_000

export function emptyHistory (node: string): SupervisorHistory {
  return { version: 1, node, restarts: [], alert: null, incident: null, recoveries: [] }
}

/**
 * Reads the history file. A missing file is a fresh start. An unreadable or foreign one is moved aside (never
 * deleted: it is the evidence of what happened) and the supervisor starts fresh, because refusing to supervise a
 * bootstrap over a corrupt log file would be the worse failure. `warn` says so.
 */
export function loadHistory (file: string, node: string, warn: (message: string) => void): SupervisorHistory {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyHistory(node)
    throw err
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  const parsed = SupervisorHistorySchema.safeParse(json)
  if (parsed.success && parsed.data.node === node) return parsed.data
  const aside = `${file}.unreadable-${Date.now()}`
  renameSync(file, aside)
  warn(parsed.success
    ? `history file ${file} belongs to node "${parsed.data.node}", not "${node}"; moved it to ${aside} and started fresh`
    : `history file ${file} is not a supervisor history (${parsed.error.issues[0]?.message ?? 'invalid'}); moved it to ${aside} and started fresh`)
  return emptyHistory(node)
}

/**
 * Write-then-rename, synchronously: a supervisor killed mid-write leaves the old file or the new one, never half of
 * one, and a restart is on disk before the node is restarted, so a crash in between still counts it.
 */
export function saveHistory (file: string, history: SupervisorHistory): void {
  mkdirSync(path.dirname(file), { recursive: true })
  const bounded: SupervisorHistory = {
    ...history,
    restarts: history.restarts.slice(-KEEP),
    recoveries: history.recoveries.slice(-KEEP)
  }
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(bounded, null, 2)}\n`)
  renameSync(tmp, file)
}
