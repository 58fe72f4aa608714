import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { RemoteNode } from './control/client.ts'
import { writeControlTokenFile } from './control/token.ts'
import { MAIN_ENTRY } from '../sim/host/child.ts'
import { READY_PREFIX, parseCommandLine, type ReadyLine } from './main.ts'

interface Run {
  ready: Promise<ReadyLine>
  exit: Promise<{ code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }>
  kill: (signal: NodeJS.Signals) => void
  closeStdin: () => void
}

const cleanups: Array<() => void> = []
afterEach(() => { for (const c of cleanups.splice(0)) c() })

const tokenFile = writeControlTokenFile()
afterAll(() => { tokenFile.remove() })
const withToken = { CHIRAL_CONTROL_TOKEN_FILE: tokenFile.path }

function run (args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [MAIN_ENTRY, ...args], { env: { ...process.env, CHIRAL_NODE_CONFIG: '', ...withToken, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  cleanups.push(() => { child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const exit = new Promise<{ code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }>(resolve => {
    child.once('exit', (code, signal) => { setImmediate(() => { resolve({ code, signal, stdout, stderr }) }) })
  })
  const ready = new Promise<ReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`not ready within 20 s; stderr: ${stderr}`)) }, 20_000)
    child.stdout.on('data', () => {
      const line = stdout.split('\n').find(l => l.startsWith(READY_PREFIX))
      if (line != null) { clearTimeout(timer); resolve(JSON.parse(line.slice(READY_PREFIX.length)) as ReadyLine) }
    })
    void exit.then(e => { clearTimeout(timer); reject(new Error(`exited before ready: ${e.code} ${e.stderr}`)) })
  })
  ready.catch(() => {})
  return { ready, exit, kill: s => { child.kill(s) }, closeStdin: () => { child.stdin.end() } }
}

const config = (name: string): string => JSON.stringify({ name, role: 'peer', transport: 'tcp', identitySeed: `main-test-${name}` })

describe('nodes/main.ts', () => {
  it.each([
    [['--config', '{"name":"a","role":"peer"}'], /^chiral-node: invalid config from --config: field "identitySeed": .+$/],
    [['--config', '{"name":"a","role":"peer","identitySeed":"s","dht":{"mode":"relay"}}'], /^chiral-node: invalid config from --config: field "dht\.mode": .+$/],
    [['--config', '{"name":"a","role":"peer","identitySeed":"s","colour":1}'], /^chiral-node: invalid config from --config: unknown field "colour"$/],
    [['--config', '{"name":'], /^chiral-node: config from --config is not valid JSON: .+$/],
    [[], /^chiral-node: no config given; usage: .+$/],
    [['--config', '{}', '--bogus'], /^chiral-node: Unknown option '--bogus'.*$/],
    [['--config-file', '/nonexistent/x.json'], /^chiral-node: cannot read config file \/nonexistent\/x\.json: ENOENT$/]
  ])('rejects %j with exit 2 and one line naming the problem', async (args, message) => {
    const { code, stdout, stderr } = await run(args).exit
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(stderr.trimEnd()).toMatch(message)
  })

  it('prints exactly one ready line and exits 0 on SIGTERM', async () => {
    const r = run(['--config', config('term')])
    const ready = await r.ready
    expect(ready.peerId).toMatch(/^12D3KooW/)
    expect(ready.multiaddrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    expect((await RemoteNode.waitUntilReady(ready.control, { token: tokenFile.token, timeoutMs: 5_000 })).name).toBe('term')
    r.kill('SIGTERM')
    const exit = await r.exit
    expect(exit.code).toBe(0)
    expect(exit.stdout.trimEnd().split('\n')).toEqual([expect.stringMatching(/^CHIRAL_READY \{/)])
  })

  it('exits 0 on SIGINT, after the shutdown command, and when stdin closes with --exit-on-stdin-close', async () => {
    const sigint = run(['--config', config('int')])
    await sigint.ready
    sigint.kill('SIGINT')
    expect((await sigint.exit).code).toBe(0)

    const dir = mkdtempSync(path.join(tmpdir(), 'chiral-main-'))
    cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
    writeFileSync(path.join(dir, 'c.json'), config('file'))
    const viaCommand = run(['--config-file', path.join(dir, 'c.json')])
    const remote = new RemoteNode({ name: 'file', role: 'peer', url: (await viaCommand.ready).control, token: tokenFile.token })
    expect(await remote.call('shutdown', {})).toEqual({ ok: true })
    expect((await viaCommand.exit).code).toBe(0)
    await remote.close()

    const orphan = run(['--exit-on-stdin-close'], { CHIRAL_NODE_CONFIG: config('env') })
    await orphan.ready
    orphan.closeStdin()
    expect((await orphan.exit).code).toBe(0)
  })

  it('takes control host and port from the flags, else from CHIRAL_CONTROL_HOST / CHIRAL_CONTROL_PORT', () => {
    const cfg = config('x')
    expect(parseCommandLine(['--config', cfg], withToken)).toMatchObject({ controlHost: '127.0.0.1', controlPort: 0, exitOnStdinClose: false })
    expect(parseCommandLine(['--config', cfg], { ...withToken, CHIRAL_CONTROL_HOST: '0.0.0.0', CHIRAL_CONTROL_PORT: '7070' })).toMatchObject({ controlHost: '0.0.0.0', controlPort: 7070 })
    expect(parseCommandLine(['--config', cfg, '--control-port', '7071'], { ...withToken, CHIRAL_CONTROL_PORT: '7070' })).toMatchObject({ controlPort: 7071 })
    expect(() => parseCommandLine(['--config', cfg, '--control-port', '70000'], withToken)).toThrow(/--control-port must be 0–65535/)
  })

  it('takes the control token from --control-token-file, else CHIRAL_CONTROL_TOKEN_FILE, and requires one', () => {
    const cfg = config('x')
    expect(parseCommandLine(['--config', cfg, '--control-token-file', tokenFile.path], {}).controlToken).toBe(tokenFile.token)
    expect(parseCommandLine(['--config', cfg], withToken).controlToken).toBe(tokenFile.token)
    expect(() => parseCommandLine(['--config', cfg], {})).toThrow(/no control token file given; create one with: .*openssl rand -hex 32/)
  })

  it('--no-control runs a node without a control channel (a black box), and not together with a token file', async () => {
    const { controlToken } = parseCommandLine(['--config', config('x'), '--no-control'], {})
    expect(controlToken).toBeNull()
    expect(() => parseCommandLine(['--config', config('x'), '--no-control', '--control-token-file', tokenFile.path], {})).toThrow(/not both/)
    const r = run(['--config', config('blackbox'), '--no-control'], { CHIRAL_CONTROL_TOKEN_FILE: '' })
    const ready = await r.ready
    expect(ready.control).toBeUndefined()
    expect(ready.peerId).toMatch(/^12D3KooW/)
    r.kill('SIGTERM')
    expect((await r.exit).code).toBe(0)
  })

  it('refuses a token file others can read, and one without a token, with exit 2 naming the fix', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chiral-main-'))
    cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
    const lax = path.join(dir, 'lax')
    writeFileSync(lax, `${tokenFile.token}\n`)
    chmodSync(lax, 0o644)
    const laxRun = await run(['--config', config('lax')], { CHIRAL_CONTROL_TOKEN_FILE: lax }).exit
    expect(laxRun.code).toBe(2)
    expect(laxRun.stderr.trimEnd()).toBe(`chiral-node: control token file ${lax} is accessible to group or others (mode 644); run: chmod 600 ${lax}`)
    const short = path.join(dir, 'short')
    writeFileSync(short, 'secret\n', { mode: 0o600 })
    const shortRun = await run(['--config', config('short'), '--control-token-file', short]).exit
    expect(shortRun.code).toBe(2)
    expect(shortRun.stderr).toMatch(/does not hold a token: expected one line of at least 32 characters/)
    const missing = await run(['--config', config('missing')], { CHIRAL_CONTROL_TOKEN_FILE: '' }).exit
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/^chiral-node: no control token file given/)
  })
})
