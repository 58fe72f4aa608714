import { randomInt } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { onExit } from './exit-hook.ts'

/**
 * A TCP port that was free a moment ago, for an address that must be fixed before its listener starts (a
 * bootstrap that is not up yet, a proxy's upstream). The port is released before returning, so something else can
 * take it before the caller binds. The kernel hands out ports from its ephemeral range to every `listen(0)` and to
 * the source port of every outgoing connection, and a busy run makes thousands of those; so the port is chosen
 * outside that range, where only another explicit chooser could collide with it, and is checked by binding it.
 */
export async function freePort (opts: { host?: string, signal?: AbortSignal } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1'
  const [low, high] = candidateRange()
  for (let attempt = 0; attempt < 50; attempt++) {
    opts.signal?.throwIfAborted()
    const port = randomInt(low, high + 1)
    if (reserve(port) && await canBind(host, port)) return port
  }
  // Everything tried was taken (a crowded machine): the kernel's choice is still better than failing.
  opts.signal?.throwIfAborted()
  return await bindAny(host)
}

/**
 * Chosen ports are reserved for a while in a directory every chiral-sim process on the machine shares: between
 * freePort() and the listener's bind lies a node's start (a second or two on a loaded machine), and another run
 * choosing at the same time (the test files run in parallel) took the same port (CI: EADDRINUSE at a node's start).
 * The bind check still decides; a reservation only keeps two choosers apart. Our own are removed at exit.
 */
const RESERVATIONS = path.join(tmpdir(), `chiral-sim-ports-${process.getuid?.() ?? 'any'}`)
const RESERVATION_MS = 120_000
const reserved = new Set<string>()

function reserve (port: number): boolean {
  const file = path.join(RESERVATIONS, String(port))
  try {
    mkdirSync(RESERVATIONS, { recursive: true, mode: 0o700 })
    writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true
    // Another chooser's, unless it is old enough that its listener is up (or gone) long since.
    try {
      if (Date.now() - statSync(file).mtimeMs < RESERVATION_MS) return false
      writeFileSync(file, `${process.pid}\n`)
    } catch { return true }
  }
  if (reserved.size === 0) onExit(() => { for (const f of reserved) { try { unlinkSync(f) } catch {} } })
  reserved.add(file)
  return true
}

/** Below the kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range), above well-known services. */
export function candidateRange (): [number, number] {
  let ephemeralLow = 32_768
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (lo != null && Number.isInteger(lo)) ephemeralLow = lo
  } catch { /* not Linux: 32768 is the common floor (macOS starts at 49152) */ }
  const high = Math.min(ephemeralLow - 1, 65_535)
  const low = Math.min(20_000, high - 1_000)
  return [Math.max(1_024, low), high]
}

/** Whether a listener can bind `host` (an address of this machine) at `port` (0: any port) right now. */
export async function canBind (host: string, port = 0): Promise<boolean> {
  const server = net.createServer()
  // Nothing should ever connect; unref so a forgotten probe can never keep the process alive.
  server.unref()
  return await new Promise<boolean>(resolve => {
    server.once('error', () => { resolve(false) })
    server.listen({ port, host, exclusive: true }, () => { server.close(() => { resolve(true) }) })
  })
}

async function bindAny (host: string): Promise<number> {
  const server = net.createServer()
  server.unref()
  return await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(err => {
        if (err != null) reject(err)
        else if (port === 0) reject(new Error(`freePort: could not read the bound port on ${host}`))
        else resolve(port)
      })
    })
  })
}
