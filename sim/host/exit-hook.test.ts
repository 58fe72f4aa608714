import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'

describe('onExit (the one exit hook)', () => {
  it('runs every registered hook once at exit, past one that throws, and not one that was unregistered', () => {
    const module = pathToFileURL(path.join(import.meta.dirname, 'exit-hook.ts')).href
    const script = [
      `import { onExit } from ${JSON.stringify(module)}`,
      "import { writeSync } from 'node:fs'",
      "onExit(() => { writeSync(1, 'first\\n') })",
      "onExit(() => { throw new Error('broken cleanup') })",
      "const off = onExit(() => { writeSync(1, 'unregistered\\n') })",
      "onExit(() => { writeSync(1, 'last\\n') })",
      'off()',
      'process.exit(3)'
    ].join('\n')
    let out = ''
    let status: number | null = null
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 })
    } catch (err) {
      out = (err as { stdout: string }).stdout
      status = (err as { status: number | null }).status
    }
    expect(status).toBe(3)
    expect(out).toBe('first\nlast\n')
  })
})
