import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { privateKeyFromSeed } from '../libp2p.ts'
import { MAIN_ENTRY } from '../../sim/host/child.ts'
import { probePort } from './probes.ts'
import { freePort } from '../../sim/host/free-port.ts'
import { isProcessAlive } from './test-support.ts'

/**
 * ops/bootstrap-health.sh against a real bootstrap process. The script's systemd commands are replaced through its
 * environment (RESTART_CMD, KILL_CMD, STATE_DIR, …) so no systemd is needed; everything else — pgrep, ss, the
 * libp2p ping, the persistent restart count — is the script as shipped. (The test lives here because vitest only
 * collects tests under nodes/, sim/, scenarios/, reports/ and bench/.)
 */

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const OPS = path.join(REPO, 'ops')
const SCRIPT = path.join(OPS, 'bootstrap-health.sh')
const NODE = process.execPath

interface Fixture {
  dir: string
  port: number
  peerId: string
  env: NodeJS.ProcessEnv
  pids: () => number[]
  restarts: () => number
}

const cleanups: Array<() => void | Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function fixture (overrides: (dir: string) => NodeJS.ProcessEnv = () => ({})): Promise<Fixture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chiral-health-'))
  const port = await freePort()
  const seed = `health-script-${path.basename(dir)}`
  const peerId = peerIdFromPrivateKey(await privateKeyFromSeed(seed)).toString()
  writeFileSync(path.join(dir, 'bootstrap.json'), JSON.stringify({
    name: 'health-boot', role: 'bootstrap', transport: 'tcp', identitySeed: seed, listen: [`/ip4/127.0.0.1/tcp/${port}`]
  }))
  // As the unit's LoadCredential= does: a token file only the node can read.
  writeFileSync(path.join(dir, 'control-token'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  // What systemctl would do, with every PID written down so that the test ends exactly the processes it started.
  writeFileSync(path.join(dir, 'start-boot.sh'), [
    '#!/usr/bin/env bash',
    `echo start >> '${dir}/restart-count'`,
    `setsid '${NODE}' '${MAIN_ENTRY}' --config-file '${dir}/bootstrap.json' --control-token-file '${dir}/control-token' >> '${dir}/boot.log' 2>&1 < /dev/null &`,
    `echo $! >> '${dir}/pids'`
  ].join('\n'))
  writeFileSync(path.join(dir, 'kill-boot.sh'), `#!/usr/bin/env bash\nfor p in $(cat '${dir}/pids' 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; true\n`)
  const pids = (): number[] => existsSync(path.join(dir, 'pids')) ? readFileSync(path.join(dir, 'pids'), 'utf8').trim().split('\n').filter(Boolean).map(Number) : []
  cleanups.push(() => {
    for (const pid of pids()) {
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    dir,
    port,
    peerId,
    pids,
    restarts: () => existsSync(path.join(dir, 'restart-count')) ? readFileSync(path.join(dir, 'restart-count'), 'utf8').trim().split('\n').length : 0,
    env: {
      PATH: process.env.PATH,
      // The config file path is unique to this fixture, so the pattern can only match this test's bootstrap.
      BOOTSTRAP_PROCESS_PATTERN: `nodes/main.ts --config-file ${dir}/bootstrap.json`,
      BOOTSTRAP_PORT: String(port),
      BOOTSTRAP_PEER_ID: peerId,
      PING_TIMEOUT_MS: '2000',
      PING_CMD: `${NODE} ${path.join(REPO, 'nodes/supervisor/ping-cli.ts')}`,
      RESTART_CMD: `bash ${dir}/start-boot.sh`,
      KILL_CMD: `bash ${dir}/kill-boot.sh`,
      STATE_DIR: path.join(dir, 'state'),
      ALERT_CMD: `echo "$ALERT_MESSAGE" >> ${dir}/alerts`,
      RECOVERY_TIMEOUT_SECONDS: '20',
      ...overrides(dir)
    }
  }
}

async function startBootstrap (f: Fixture): Promise<number> {
  execFileSync('bash', [path.join(f.dir, 'start-boot.sh')])
  const deadline = Date.now() + 20_000
  while (!(await probePort('127.0.0.1', f.port, AbortSignal.timeout(1_000))).ok) {
    if (Date.now() > deadline) throw new Error(`bootstrap did not listen within 20 s:\n${readFileSync(path.join(f.dir, 'boot.log'), 'utf8')}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return f.pids().at(-1)!
}

async function health (f: Fixture, args: string[] = []): Promise<{ code: number, out: string }> {
  return await new Promise(resolve => {
    execFile('bash', [SCRIPT, ...args], { env: f.env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, out: `${stdout}${stderr}` })
    })
  })
}

function ping (f: Fixture): string {
  try {
    return execFileSync(NODE, [path.join(REPO, 'nodes/supervisor/ping-cli.ts'), `/ip4/127.0.0.1/tcp/${f.port}/p2p/${f.peerId}`], { encoding: 'utf8', timeout: 15_000 }).trim()
  } catch (err) {
    return `failed: ${(err as { stdout?: string }).stdout ?? ''}`
  }
}

describe('ops/bootstrap-health.sh with a real bootstrap', () => {
  it('passes all three checks on a healthy bootstrap', async () => {
    const f = await fixture()
    await startBootstrap(f)
    const { code, out } = await health(f)
    expect(code, out).toBe(0)
    expect(out).toMatch(/check process ok: pid \d+/)
    expect(out).toMatch(new RegExp(`check port ok: port ${f.port} listening`))
    expect(out).toMatch(/check dht ok: libp2p ping [\d.]+ ms/)
    expect(f.restarts()).toBe(1)
  })

  it('restarts a bootstrap killed with SIGKILL and sees it answer ping again', async () => {
    const f = await fixture()
    const first = await startBootstrap(f)
    process.kill(first, 'SIGKILL')
    const { code, out } = await health(f)
    expect(code, out).toBe(1)
    expect(out).toMatch(/check process FAILED: no process matches/)
    expect(out).toMatch(/restarting the bootstrap \(restart 1 of at most 3 in 600 s\)/)
    expect(out).toMatch(/bootstrap recovered \d+ s after detection/)
    expect(f.restarts()).toBe(2)
    expect(isProcessAlive(f.pids().at(-1)!)).toBe(true)
    expect(ping(f)).toMatch(/^ok /)
    expect(readFileSync(path.join(f.dir, 'state', 'restarts'), 'utf8').trim().split('\n')).toHaveLength(1)
    // The restarted bootstrap must not inherit the script's lock: the next run checks instead of waiting it out.
    const next = await health(f)
    expect(next.code, next.out).toBe(0)
    expect(next.out).toMatch(/check dht ok/)
  })

  it('kills and restarts a frozen bootstrap that still holds its port: only the libp2p ping notices', async () => {
    const f = await fixture()
    const frozen = await startBootstrap(f)
    process.kill(frozen, 'SIGSTOP')
    const { code, out } = await health(f)
    expect(code, out).toBe(1)
    expect(out).toMatch(/check process ok/)
    expect(out).toMatch(/check port ok/)
    expect(out).toMatch(/check dht FAILED: no libp2p ping answer/)
    expect(out).toMatch(/killing the hung bootstrap/)
    expect(isProcessAlive(frozen)).toBe(false)
    expect(ping(f)).toMatch(/^ok /)
  })

  it('alerts instead of a 4th restart within 10 minutes, stays quiet until --reset, and keeps the count on disk', async () => {
    // The webhook receiver stands in for Slack.
    const posts: unknown[] = []
    const hook = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() }).on('end', () => { posts.push(JSON.parse(body)); res.end('ok') })
    })
    await new Promise<void>(resolve => { hook.listen(0, '127.0.0.1', resolve) })
    cleanups.push(async () => { await new Promise(resolve => { hook.close(resolve) }) })
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alert`
    // A bootstrap that never comes back: the restart command starts nothing.
    const f = await fixture(dir => ({ RESTART_CMD: `echo start >> ${dir}/restart-count`, RECOVERY_TIMEOUT_SECONDS: '1', ALERT_WEBHOOK_URL: hookUrl }))
    const codes = []
    for (let i = 0; i < 5; i++) codes.push((await health(f)).code)
    expect(codes).toEqual([3, 3, 3, 2, 2])
    expect(f.restarts()).toBe(3)
    expect(readFileSync(path.join(f.dir, 'state', 'restarts'), 'utf8').trim().split('\n')).toHaveLength(3)
    const alerts = readFileSync(path.join(f.dir, 'alerts'), 'utf8').trim().split('\n')
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatch(/restarted 3 times within 600 s.*auto-restart is OFF/)
    expect(posts).toEqual([{ text: alerts[0] }])
    expect((await health(f)).out).toMatch(/auto-restart is suspended since .*--reset/)

    expect((await health(f, ['--reset'])).code).toBe(0)
    expect((await health(f)).code).toBe(3)
    expect(f.restarts()).toBe(4)
  })

  it('forgets restarts older than the window', async () => {
    const f = await fixture(dir => ({ RESTART_CMD: `echo start >> ${dir}/restart-count`, RECOVERY_TIMEOUT_SECONDS: '1' }))
    const now = Math.floor(Date.now() / 1000)
    execFileSync('mkdir', ['-p', path.join(f.dir, 'state')])
    // Three restarts, but the oldest 11 minutes ago: only two are inside the 10-minute window.
    writeFileSync(path.join(f.dir, 'state', 'restarts'), `${now - 660}\n${now - 120}\n${now - 60}\n`)
    const { code, out } = await health(f)
    expect(code, out).toBe(3)
    expect(out).toMatch(/restart 3 of at most 3/)
    expect(readFileSync(path.join(f.dir, 'state', 'restarts'), 'utf8').trim().split('\n')).toHaveLength(3)
  })

  it('rejects a bad setting with exit 64 and one line', async () => {
    const f = await fixture(() => ({ BOOTSTRAP_PORT: 'http' }))
    const { code, out } = await health(f)
    expect(code).toBe(64)
    expect(out.trim()).toBe("bootstrap-health: PORT must be a whole number, got 'http'")
  })
})

const systemdAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe('ops systemd units', () => {
  it.skipIf(!systemdAnalyze)(`pass systemd-analyze verify${systemdAnalyze ? '' : ' (skipped: systemd-analyze is not installed)'}`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'chiral-units-'))
    cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
    for (const unit of ['bootstrap-health.service', 'bootstrap-health.timer', 'chiral-bootstrap.service']) copyFileSync(path.join(OPS, unit), path.join(dir, unit))
    // verify checks that ExecStart binaries exist: point them at this checkout instead of the install locations.
    const rewrite = (unit: string, from: string, to: string): void => {
      const file = path.join(dir, unit)
      const text = readFileSync(file, 'utf8')
      expect(text).toContain(from)
      writeFileSync(file, text.replaceAll(from, to))
    }
    rewrite('bootstrap-health.service', '/usr/local/bin/bootstrap-health.sh', SCRIPT)
    rewrite('chiral-bootstrap.service', '/usr/bin/node', NODE)
    const result = (() => {
      try {
        return { code: 0, out: execFileSync('systemd-analyze', ['verify', ...['bootstrap-health.service', 'bootstrap-health.timer', 'chiral-bootstrap.service'].map(u => path.join(dir, u))], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) }
      } catch (err) {
        return { code: 1, out: `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}` }
      }
    })()
    expect(result, result.out).toEqual({ code: 0, out: '' })
  })
})
