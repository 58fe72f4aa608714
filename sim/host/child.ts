import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { NodeConfigInput } from '../../nodes/config.ts'
import { READY_PREFIX, type ReadyLine } from '../../nodes/main.ts'
import { CONTROL_TOKEN_FLAG, writeControlTokenFile } from '../../nodes/control/token.ts'
import { onExit } from './exit-hook.ts'

/**
 * A node as a child process: a chiral node running nodes/main.ts (the process backend's nodes, the bootstrap a
 * supervisor restarts) or any command (an external bootstrap, the Toxiproxy server). It is killed with its parent by
 * an 'exit' handler when the parent exits normally; a chiral node also exits when its stdin pipe closes
 * (`--exit-on-stdin-close`), which covers a parent killed outright. Any other command gets that tie from the
 * kernel with `dieWithParent` (Linux); without it, a SIGKILLed harness leaves it behind.
 */

export const MAIN_ENTRY = fileURLToPath(new URL('../../nodes/main.ts', import.meta.url))

/** A started chiral node: its ready line, and the control token the harness must send it. */
export interface NodeReady extends ReadyLine {
  token: string
}

const ReadyLineSchema = z.object({ control: z.string(), peerId: z.string(), multiaddrs: z.array(z.string()) })

/** Reads a node's CHIRAL_READY line (any implementation's) into what the harness keeps, with the token it handed over. */
export function nodeReadyLine (token: string): (line: string) => NodeReady | undefined {
  return line => line.startsWith(READY_PREFIX)
    ? { ...ReadyLineSchema.parse(JSON.parse(line.slice(READY_PREFIX.length))), token }
    : undefined
}

export interface SpawnNodeOptions {
  config: NodeConfigInput
  /** Default `process.execPath`: the Node that runs the harness, which must already strip types. */
  nodeBinary?: string
  controlHost?: string
  controlPort?: number
  env?: NodeJS.ProcessEnv
  /** Until the READY line; default 30 s (a cold start loads libp2p from disk). */
  startTimeoutMs?: number
  signal?: AbortSignal
}

/** Enough stderr to show a stack trace or libp2p's last complaint, not a whole debug log. */
const STDERR_KEEP_BYTES = 16 * 1024

const live = new Set<ChildProcess>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // At exit a signal is all there is time for.
  onExit(() => {
    for (const child of live) {
      try { child.kill('SIGKILL') } catch { /* already gone */ }
    }
  })
}

/** How to start any command and recognise that it is ready, for ChildNode.spawnCommand. */
export interface SpawnCommandOptions<R> {
  /** The harness's name for the process, used in errors. */
  name: string
  file: string
  args: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /**
   * Returns the ready value for a line that announces readiness, undefined for any other line; throws for a garbled
   * one. Without it the process counts as ready once it has been spawned (the caller then probes it its own way).
   */
  readyLine?: (line: string) => R | undefined
  /** Also look for the ready line on stderr (third-party nodes often log there). Default: stdout only. */
  readyOnStderr?: boolean
  /**
   * Its own process group: a terminal's Ctrl-C (sent to the whole foreground group) reaches only the harness, which
   * then stops the child in order, instead of the child dying first under a teardown that still needs it.
   */
  detached?: boolean
  /**
   * Killed (SIGKILL) by the kernel when this process dies, however it dies, for commands that cannot watch their stdin
   * as chiral nodes do. Linux only (util-linux `setpriv --pdeathsig`); elsewhere the next run's reaper catches it.
   */
  dieWithParent?: boolean
  /** The child and its pipes do not keep this process alive (the 'exit' hook still kills it). */
  unref?: boolean
  /** Called with every complete output line, stdout and stderr, for as long as the process runs. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void
  startTimeoutMs: number
  signal?: AbortSignal | undefined
}

let wrapper: string | null | undefined

/** setpriv execs the command in place (same pid), with the kernel's parent-death signal set. */
function parentDeathWrapper (): string | undefined {
  if (wrapper === undefined) {
    wrapper = null
    if (process.platform === 'linux') {
      for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
        try {
          accessSync(path.join(dir, 'setpriv'), constants.X_OK)
          wrapper = path.join(dir, 'setpriv')
          break
        } catch { /* not here */ }
      }
    }
  }
  return wrapper ?? undefined
}

/** Where spawn would find `file` (a path, or a name on PATH), or undefined. */
function resolveExecutable (file: string, cwd: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = file.includes('/')
    ? [path.resolve(cwd ?? process.cwd(), file)]
    : (env.PATH ?? '').split(path.delimiter).filter(dir => dir !== '').map(dir => path.resolve(cwd ?? process.cwd(), dir, file))
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch { /* next */ }
  }
  return undefined
}

export class ChildNode<R = NodeReady> implements AsyncDisposable {
  readonly name: string
  readonly pid: number
  readonly ready: R
  readonly #child: ChildProcess
  readonly #stderr: { text: string }
  readonly #exited: Promise<void>
  #exitedAt: number | undefined
  #exitCode: number | null = null
  #exitSignal: NodeJS.Signals | null = null

  private constructor (name: string, child: ChildProcess, ready: R, stderr: { text: string }, exited: Promise<void>) {
    this.name = name
    this.#child = child
    this.pid = child.pid ?? -1
    this.ready = ready
    this.#stderr = stderr
    this.#exited = exited
  }

  /**
   * A chiral node: nodes/main.ts, ready when it prints its CHIRAL_READY line. Its control token is generated here
   * and handed over in a 0600 file that is deleted once the node has started (it reads it once), so the token is
   * only in this process's memory (`ready.token`) and the node's.
   */
  static async spawn (options: SpawnNodeOptions): Promise<ChildNode> {
    const tokenFile = writeControlTokenFile()
    try {
      return await ChildNode.spawnCommand({
        name: options.config.name,
        file: options.nodeBinary ?? process.execPath,
        args: [
          MAIN_ENTRY,
          '--config', JSON.stringify(options.config),
          CONTROL_TOKEN_FLAG, tokenFile.path,
          '--control-host', options.controlHost ?? '127.0.0.1',
          '--control-port', String(options.controlPort ?? 0),
          '--exit-on-stdin-close'
        ],
        ...(options.env != null ? { env: options.env } : {}),
        readyLine: nodeReadyLine(tokenFile.token),
        startTimeoutMs: options.startTimeoutMs ?? 30_000,
        signal: options.signal
      })
    } finally {
      tokenFile.remove()
    }
  }

  /** Any command, ready when `readyLine` recognises a line of its output; killed with the harness like a node. */
  static async spawnCommand<R> (options: SpawnCommandOptions<R>): Promise<ChildNode<R>> {
    const name = options.name
    options.signal?.throwIfAborted()
    installExitHook()
    const leash = options.dieWithParent === true ? parentDeathWrapper() : undefined
    // Behind the wrapper a missing program would be the wrapper's exit code 127; say what spawn itself would.
    if (leash != null && resolveExecutable(options.file, options.cwd, options.env ?? process.env) == null) {
      throw new Error(`node "${name}" could not be spawned: spawn ${options.file} ENOENT`)
    }
    const child = spawn(leash ?? options.file, leash != null ? ['--pdeathsig', 'KILL', '--', options.file, ...options.args] : options.args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: options.detached === true,
      env: options.env ?? process.env,
      ...(options.cwd != null ? { cwd: options.cwd } : {})
    })
    live.add(child)
    if (options.unref === true) {
      child.unref()
      for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.()
    }
    const stderr = { text: '' }
    const lines = (stream: 'stdout' | 'stderr', onLine: (line: string) => void): void => {
      let buffered = ''
      const source = stream === 'stdout' ? child.stdout : child.stderr
      source?.setEncoding('utf8')
      source?.on('data', (chunk: string) => {
        buffered += chunk
        let newline = buffered.indexOf('\n')
        while (newline >= 0) {
          onLine(buffered.slice(0, newline).replace(/\r$/, ''))
          buffered = buffered.slice(newline + 1)
          newline = buffered.indexOf('\n')
        }
      })
    }
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => {
      stderr.text = (stderr.text + chunk).slice(-STDERR_KEEP_BYTES)
    })
    if (options.onLine != null) {
      const onLine = options.onLine
      lines('stdout', line => { onLine(line, 'stdout') })
      lines('stderr', line => { onLine(line, 'stderr') })
    }
    // The node reads nothing from stdin; it only watches for the pipe to close. An EPIPE after the child died is expected.
    child.stdin?.on('error', () => {})

    let node: ChildNode<R> | undefined
    const exited = new Promise<void>(resolve => {
      child.once('exit', (code, signal) => {
        live.delete(child)
        if (node != null) {
          node.#exitedAt = Date.now()
          node.#exitCode = code
          node.#exitSignal = signal
        }
        resolve()
      })
    })

    const ready = await new Promise<R>((resolve, reject) => {
      let settled = false
      const fail = (why: string): void => {
        if (settled) return
        settled = true
        cleanup()
        child.kill('SIGKILL')
        // Give stderr a moment to drain after the kill so the error shows the child's own last words.
        void Promise.race([exited, new Promise(r => setTimeout(r, 500))]).then(() => {
          const tail = stderr.text.trim()
          reject(new Error(`node "${name}" ${why}${tail === '' ? '' : `; its stderr:\n${tail}`}`))
        })
      }
      const onLine = (line: string): void => {
        if (settled) return
        if (options.readyLine == null) return
        let parsed: R | undefined
        try {
          parsed = options.readyLine(line)
        } catch (err) {
          fail(`printed an unreadable ready line (${(err as Error).message}): ${line.slice(0, 200)}`)
          return
        }
        if (parsed === undefined) return
        settled = true
        cleanup()
        resolve(parsed)
      }
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        fail(`exited before it was ready (${signal != null ? `signal ${signal}` : `code ${code}`})`)
      }
      const onError = (err: Error): void => { fail(`could not be spawned: ${err.message}`) }
      const onAbort = (): void => { fail('start was aborted') }
      const timer = setTimeout(() => { fail(`was not ready within ${options.startTimeoutMs} ms`) }, options.startTimeoutMs)
      const cleanup = (): void => {
        clearTimeout(timer)
        child.off('exit', onExit)
        child.off('error', onError)
        options.signal?.removeEventListener('abort', onAbort)
      }
      lines('stdout', onLine)
      if (options.readyOnStderr === true) lines('stderr', onLine)
      if (options.readyLine == null) {
        child.once('spawn', () => {
          if (settled) return
          settled = true
          cleanup()
          resolve(undefined as R)
        })
      }
      child.once('exit', onExit)
      child.once('error', onError)
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
    // Keep draining stdout: a full pipe would block the child on its next write.
    child.stdout?.resume()
    node = new ChildNode<R>(name, child, ready, stderr, exited)
    return node
  }

  get exited (): boolean {
    return this.#child.exitCode != null || this.#child.signalCode != null
  }

  /** When the 'exit' event arrived; the exact failure time for the supervisor's recovery record. */
  get exitedAt (): number | undefined {
    return this.#exitedAt
  }

  /** "code 0", "signal SIGKILL", or undefined while running. */
  get exitStatus (): string | undefined {
    if (!this.exited) return undefined
    const signal = this.#exitSignal ?? this.#child.signalCode
    return signal != null ? `signal ${signal}` : `code ${this.#exitCode ?? this.#child.exitCode}`
  }

  stderrTail (): string {
    return this.#stderr.text
  }

  sendSignal (signal: NodeJS.Signals): void {
    if (!this.exited) this.#child.kill(signal)
  }

  /** Resolves true once the process has exited, false if it is still running after `timeoutMs`. */
  async waitForExit (timeoutMs: number): Promise<boolean> {
    if (this.exited) return true
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<false>(resolve => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
    try {
      return await Promise.race([this.#exited.then(() => true as const), timedOut])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGKILL and wait for the exit (bounded: the kernel reaps a SIGKILLed process in milliseconds). */
  async kill (): Promise<void> {
    this.sendSignal('SIGKILL')
    if (!await this.waitForExit(5_000)) throw new Error(`node "${this.name}" (pid ${this.pid}) survived SIGKILL for 5 s`)
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async terminate (graceMs: number): Promise<void> {
    this.sendSignal('SIGTERM')
    if (await this.waitForExit(graceMs)) return
    await this.kill()
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.kill()
  }
}
