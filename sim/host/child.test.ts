import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { ChildNode } from './child.ts'
import { isProcessAlive, waitUntil as until } from '../../nodes/supervisor/test-support.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'chiral-child-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

describe.skipIf(process.platform !== 'linux')('ChildNode.spawnCommand with dieWithParent', () => {
  it('a command that cannot watch its stdin dies with a parent killed outright (SIGKILL: no exit hook runs)', async () => {
    const script = path.join(dir, 'parent.ts')
    writeFileSync(script, [
      `import { ChildNode } from ${JSON.stringify(pathToFileURL(path.join(import.meta.dirname, 'child.ts')).href)}`,
      "const child = await ChildNode.spawnCommand({ name: 'sleeper', file: 'sleep', args: ['60'], dieWithParent: true, startTimeoutMs: 5000 })",
      'console.log(child.pid)',
      'setTimeout(() => {}, 60_000)'
    ].join('\n'))
    const parent = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    parent.stdout.on('data', (d: Buffer) => { out += d.toString() })
    expect(await until(() => /^\d+\n/.test(out), 15_000)).toBe(true)
    const pid = Number(out.trim())
    try {
      expect(isProcessAlive(pid)).toBe(true)
      parent.kill('SIGKILL')
      expect(await until(() => !isProcessAlive(pid), 5_000)).toBe(true)
    } finally {
      if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL')
    }
  })

  it('a missing program is still reported as spawn would (ENOENT), not as the wrapper\'s exit', async () => {
    await expect(ChildNode.spawnCommand({ name: 'nothing', file: 'no-such-program-chiral', args: [], dieWithParent: true, startTimeoutMs: 5_000 }))
      .rejects.toThrow('node "nothing" could not be spawned: spawn no-such-program-chiral ENOENT')
  })
})
