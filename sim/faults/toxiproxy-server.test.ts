import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { toxiproxyRequest } from './api.ts'
import { freePort } from '../host/free-port.ts'
import { LinkProxies } from './link-proxies.ts'
import { exchange, isProcessAlive, pidsWithArgs, startEchoServer, toxiproxyGate, waitUntil, type EchoServer } from './test-support.ts'
import { findToxiproxyBinary, reapOrphanedToxiproxyServers, REPO_ROOT, startToxiproxy, ToxiproxyUnavailableError, type ToxiproxyServer } from './toxiproxy-server.ts'

// The parent scripts are .ts: they need the project's Node 24 (type stripping), which may not be the Node running
// vitest (a `#!/usr/bin/env node` shim picks whatever is first on PATH).
const PROJECT_NODE = path.join(REPO_ROOT, 'node_modules', '.bin', 'node')
const NODE = fs.existsSync(PROJECT_NODE) ? PROJECT_NODE : process.execPath
const SERVER_MODULE = pathToFileURL(path.join(import.meta.dirname, 'toxiproxy-server.ts')).href

/** Everything a test starts goes here and is torn down in afterEach, whether the test passed or not. */
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  vi.unstubAllEnvs()
  for (const fn of cleanups.splice(0).reverse()) {
    try { await fn() } catch {}
  }
})

function pgidOf (pid: number): number {
  return Number(execFileSync('ps', ['-o', 'pgid=', '-p', String(pid)], { encoding: 'utf8' }).trim())
}

function killOnCleanup (child: ChildProcess): void {
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
}

describe('finding a server', () => {
  it('reports a wrong TOXIPROXY_SERVER instead of silently using another binary', async () => {
    vi.stubEnv('TOXIPROXY_URL', '')
    vi.stubEnv('TOXIPROXY_SERVER', '/nonexistent/toxiproxy-server')
    expect(findToxiproxyBinary()).toBeNull()
    const err = await startToxiproxy().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ToxiproxyUnavailableError)
    const message = (err as Error).message
    expect(message).toContain('TOXIPROXY_SERVER=/nonexistent/toxiproxy-server is not an executable file')
    expect(message).toContain('bash scripts/setup-toxiproxy.sh')
    expect(message).toContain('TOXIPROXY_URL')
    expect(message).not.toContain('\n')
  })

  it('names TOXIPROXY_URL when nothing answers there, within the deadline', async () => {
    const port = await freePort()
    vi.stubEnv('TOXIPROXY_URL', `http://127.0.0.1:${port}`)
    const started = Date.now()
    await expect(startToxiproxy({ startTimeoutMs: 2_000 })).rejects.toThrow(/TOXIPROXY_URL points at http:\/\/127\.0\.0\.1:\d+, but no Toxiproxy API answered GET \/version/)
    expect(Date.now() - started).toBeLessThan(3_000)
  })

  it('names TOXIPROXY_URL when it is not a URL', async () => {
    vi.stubEnv('TOXIPROXY_URL', 'localhost:8474')
    await expect(startToxiproxy()).rejects.toThrow(/TOXIPROXY_URL \(localhost:8474\) is not a valid http URL/)
  })

  it('fails clearly when the binary cannot be run', async () => {
    await expect(startToxiproxy({ binary: '/nonexistent/toxiproxy-server' })).rejects.toThrow(/could not run \/nonexistent\/toxiproxy-server: ENOENT/)
  })
})

const gate = toxiproxyGate('binary')

describe.skipIf(gate.skip)(`a real toxiproxy-server process${gate.title}`, () => {
  let binary: string

  beforeAll(() => {
    const found = findToxiproxyBinary()
    if (found == null) throw new ToxiproxyUnavailableError('no toxiproxy-server binary was found')
    binary = found
  })

  async function start (opts: Parameters<typeof startToxiproxy>[0] = {}): Promise<ToxiproxyServer> {
    const server = await startToxiproxy({ binary, ...opts })
    cleanups.push(() => server.close())
    return server
  }

  it('starts on a free loopback port with metrics, and close leaves no process behind', async () => {
    const server = await start()
    expect(server.mode).toBe('spawned')
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(server.version).toBe('2.12.0')
    expect(server.metricsEnabled).toBe(true)
    expect(await server.client.getAll()).toEqual({})
    const pid = server.pid!
    expect(isProcessAlive(pid)).toBe(true)

    await server.close()
    expect(isProcessAlive(pid)).toBe(false)
    await expect(toxiproxyRequest(server.url, 'GET', '/version', undefined, { timeoutMs: 1_000 })).rejects.toThrow(/ECONNREFUSED/)
    await server.close()
  })

  it('a server that died (Ctrl-C reached it, OOM) took its proxies along: disposing the links is not an error', async () => {
    const server = await start()
    const proxies = new LinkProxies(server)
    const echo = await startEchoServer()
    cleanups.push(() => echo.close())
    await proxies.createLink('a->b', { host: '127.0.0.1', port: echo.port })
    expect(server.running).toBe(true)
    process.kill(server.pid!, 'SIGKILL')
    expect(await waitUntil(() => !server.running, 3_000)).toBe(true)
    await expect(proxies.disposeAll()).resolves.toBeUndefined()
    expect(server.createdProxies.size).toBe(0)
  })

  it('is an AsyncDisposable: `await using` stops it', async () => {
    let pid = 0
    {
      await using server = await start()
      pid = server.pid!
      expect(isProcessAlive(pid)).toBe(true)
    }
    expect(isProcessAlive(pid)).toBe(false)
  })

  it('will not mistake another server on its port for its own, and leaves no process when it gives up', async () => {
    // An impostor answering like Toxiproxy: the spawned server cannot bind, does not exit, and must be detected.
    const impostor = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(req.url === '/version' ? '{"version": "2.12.0"}' : '{}')
    })
    await new Promise<void>(resolve => impostor.listen(0, '127.0.0.1', () => resolve()))
    cleanups.push(() => new Promise<void>(resolve => { impostor.closeAllConnections(); impostor.close(() => resolve()) }))
    const port = (impostor.address() as { port: number }).port

    await expect(start({ port })).rejects.toThrow(/could not listen on 127\.0\.0\.1:\d+: .*address already in use/)
    expect(await waitUntil(() => pidsWithArgs(['-port', String(port)]).length === 0, 3_000)).toBe(true)
  })

  it('aborting the start kills the half-started server', async () => {
    const port = await freePort()
    const controller = new AbortController()
    const pending = start({ port, signal: controller.signal })
    // Abort as soon as the process exists, before its API can answer.
    await waitUntil(() => pidsWithArgs(['-port', String(port)]).length > 0, 3_000, 1)
    controller.abort(new Error('test abort'))
    await expect(pending).rejects.toThrow(/test abort/)
    expect(await waitUntil(() => pidsWithArgs(['-port', String(port)]).length === 0, 3_000)).toBe(true)
  })

  describe('with TOXIPROXY_URL', () => {
    let echo: EchoServer

    it('uses the running server and removes only the proxies it created', async () => {
      const shared = await start()
      echo = await startEchoServer()
      cleanups.push(() => echo.close())
      const foreign = await shared.client.createProxy({ name: 'someone-elses', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echo.port}` })

      vi.stubEnv('TOXIPROXY_URL', shared.url)
      const external = await startToxiproxy()
      expect(external.mode).toBe('external')
      expect(external.pid).toBeNull()
      expect(external.url).toBe(shared.url)
      expect(external.version).toBe('2.12.0')

      const proxies = new LinkProxies(external)
      const link = await proxies.createLink('a->b', { host: '127.0.0.1', port: echo.port })
      expect((await exchange(link.listen.port, Buffer.from('x'), { deadlineMs: 3_000 })).outcome).toBe('complete')

      await external.close()
      const names = Object.keys(await shared.client.getAll())
      expect(names).toContain(foreign.name)
      expect(names).not.toContain(link.proxyName)
      expect(isProcessAlive(shared.pid!)).toBe(true)
    })
  })

  describe('when the parent process goes away', () => {
    let dir: string

    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chiral-toxiproxy-exit-'))
    })
    afterAll(() => {
      fs.rmSync(dir, { recursive: true, force: true })
    })

    /** Runs a Node script that starts a server, reports its pid, then ends as `how` says. */
    async function runParent (how: 'natural' | 'process.exit' | 'wait'): Promise<{ child: ChildProcess, serverPid: number }> {
      const script = path.join(dir, `parent-${how}.ts`)
      fs.writeFileSync(script, [
        `import { startToxiproxy } from ${JSON.stringify(SERVER_MODULE)}`,
        `const server = await startToxiproxy({ binary: ${JSON.stringify(binary)} })`,
        'console.log(JSON.stringify({ pid: server.pid }))',
        how === 'process.exit' ? 'process.exit(0)' : '',
        // Bounded: the test sends Ctrl-C long before this, and the script must never outlive a failed test.
        how === 'wait' ? 'setTimeout(() => {}, 20_000)' : ''
      ].join('\n'))
      // detached: its own process group, so the Ctrl-C test can signal the group as a terminal would.
      const child = spawn(NODE, [script], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      killOnCleanup(child)
      let out = ''
      let err = ''
      child.stdout!.on('data', d => { out += String(d) })
      child.stderr!.on('data', d => { err += String(d) })
      const ok = await waitUntil(() => /"pid":\d+/.test(out) || child.exitCode !== null, 15_000)
      const m = /"pid":(\d+)/.exec(out)
      if (!ok || m == null) throw new Error(`parent script did not report a server pid: ${out}\n${err}`)
      const serverPid = Number(m[1])
      cleanups.push(() => { if (isProcessAlive(serverPid)) process.kill(serverPid, 'SIGKILL') })
      return { child, serverPid }
    }

    async function exited (child: ChildProcess): Promise<boolean> {
      return await waitUntil(() => child.exitCode !== null || child.signalCode !== null, 10_000)
    }

    it('a parent that simply ends (never closing) neither hangs nor leaves the server behind', async () => {
      const { child, serverPid } = await runParent('natural')
      expect(await exited(child)).toBe(true)
      expect(await waitUntil(() => !isProcessAlive(serverPid), 3_000)).toBe(true)
    })

    it('process.exit() kills the server through the exit hook', async () => {
      const { child, serverPid } = await runParent('process.exit')
      expect(await exited(child)).toBe(true)
      expect(await waitUntil(() => !isProcessAlive(serverPid), 3_000)).toBe(true)
    })

    it('Ctrl-C (SIGINT to the foreground process group) stops both', async () => {
      const { child, serverPid } = await runParent('wait')
      process.kill(-child.pid!, 'SIGINT')
      expect(await exited(child)).toBe(true)
      expect(await waitUntil(() => !isProcessAlive(serverPid), 3_000)).toBe(true)
    })

    it('SIGKILL of the parent takes the server along (issue 12: it leaked, with its listening ports)', async () => {
      const { child, serverPid } = await runParent('wait')
      // The server is in its own process group: only the parent-death tie can reach it.
      expect(pgidOf(serverPid)).not.toBe(pgidOf(child.pid!))
      process.kill(child.pid!, 'SIGKILL')
      expect(await exited(child)).toBe(true)
      expect(await waitUntil(() => !isProcessAlive(serverPid), 3_000)).toBe(true)
    })

    it('the next start reaps a server whose owner is gone, and leaves a live owner\'s server alone', async () => {
      const deadOwner = spawn('true')
      await new Promise(resolve => deadOwner.once('exit', resolve))
      const orphanDir = fs.mkdtempSync(path.join(os.tmpdir(), `chiral-toxiproxy-${deadOwner.pid!}-`))
      cleanups.push(() => { fs.rmSync(orphanDir, { recursive: true, force: true }) })
      fs.writeFileSync(path.join(orphanDir, 'identity.json'), '[]')
      const port = await freePort()
      // Started without the tie, as by a harness on a system without one: its parent is not the owner in its path.
      const orphan = spawn(binary, ['-host', '127.0.0.1', '-port', String(port), '-config', path.join(orphanDir, 'identity.json')], { stdio: 'ignore', detached: true })
      killOnCleanup(orphan)
      expect(await waitUntil(() => pidsWithArgs(['-port', String(port)]).length > 0, 3_000)).toBe(true)
      // The next start reaps it.
      const mine = await startToxiproxy({ binary })
      cleanups.push(async () => { await mine.close() })
      expect(await waitUntil(() => orphan.exitCode !== null || orphan.signalCode !== null, 3_000)).toBe(true)
      expect(orphan.signalCode).toBe('SIGKILL')
      // A live owner's server (this process's) is never an orphan.
      expect(reapOrphanedToxiproxyServers()).toEqual([])
      expect(isProcessAlive(mine.pid!)).toBe(true)
    })
  })
})
