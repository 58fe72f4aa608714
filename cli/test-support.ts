import { spawn } from 'node:child_process'
import path from 'node:path'

/** The CLI as users run it, for the CLI's tests: a child process on this Node, with a deadline. */

export const ROOT = path.resolve(import.meta.dirname, '..')
const CLI = path.join(ROOT, 'cli/main.ts')

export interface CliResult { code: number | null, stdout: string, stderr: string }

export async function runCli (args: string[], opts: { interruptAfter?: RegExp, env?: Record<string, string> } = {}): Promise<CliResult> {
  // GITHUB_STEP_SUMMARY emptied unless a test sets it: the CLI's own test runs must not append to the CI job's summary.
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, CI: 'true', GITHUB_STEP_SUMMARY: '', ...opts.env } })
  let interruptAfter = opts.interruptAfter
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    if (interruptAfter?.test(stdout) === true) { interruptAfter = undefined; setTimeout(() => child.kill('SIGINT'), 500) }
  })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const deadline = setTimeout(() => child.kill('SIGKILL'), 50_000)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(deadline)
  return { code, stdout, stderr }
}
