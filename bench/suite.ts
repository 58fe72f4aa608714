import { loadBuiltin } from '../scenarios/load.ts'
import { createBackend } from '../sim/backends/index.ts'
import type { Mode } from '../scenarios/record.ts'
import { runSuite } from '../sim/suite.ts'
import { describeError } from '../nodes/util.ts'

export interface SuiteFigure {
  mode: Mode
  measured: boolean
  wallMs: number | null
  scenarios: number
  passed: number
  failed: number
  skipped: number
  errored: number
  reason?: string
}

/** Wall time of the built-in suite in one mode (runSuite's default job count); never throws. */
export async function measureSuite (mode: Mode, seed: number, deadlineMs = 600_000): Promise<SuiteFigure> {
  const none = { mode, measured: false, wallMs: null, scenarios: 0, passed: 0, failed: 0, skipped: 0, errored: 0 }
  if (mode === 'process' || mode === 'docker') {
    // Only measured when the backend can be created at all (another engineer is finishing it).
    try {
      const backend = await createBackend(mode)
      await backend[Symbol.asyncDispose]()
    } catch (err) {
      return { ...none, reason: `createBackend('${mode}') failed: ${oneLine(describeError(err))}` }
    }
  }
  const t = performance.now()
  try {
    const record = await runSuite(await loadBuiltin(), { mode, seed, signal: AbortSignal.timeout(deadlineMs) })
    const count = (s: string): number => record.scenarios.filter(x => x.status === s).length
    return {
      mode,
      measured: true,
      wallMs: Math.round(performance.now() - t),
      scenarios: record.scenarios.length,
      passed: count('passed'),
      failed: count('failed'),
      skipped: count('skipped'),
      errored: count('error')
    }
  } catch (err) {
    return { ...none, wallMs: Math.round(performance.now() - t), reason: oneLine(describeError(err)) }
  }
}

/** A reason fit for one table cell. */
function oneLine (text: string): string {
  const s = text.split('\n').map(l => l.trim()).filter(l => l !== '').join('; ')
  return s.length > 200 ? `${s.slice(0, 197)}…` : s
}
