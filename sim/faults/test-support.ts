import fs from 'node:fs'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { findToxiproxyBinary } from './toxiproxy-server.ts'
import { isProcessAlive, waitUntil } from '../../nodes/supervisor/test-support.ts'

export { isProcessAlive, waitUntil }

/**
 * Helpers for the tests that drive a real Toxiproxy: when to skip, a TCP echo server to proxy to, one timed
 * request/response exchange, and process liveness. Not imported by production code.
 */

const onCi = (): boolean => ['true', '1'].includes((process.env.CI ?? '').toLowerCase())

export interface Gate {
  skip: boolean
  /** Suffix for the describe title so the skip reason shows in the test report, not only in a log. */
  title: string
}

/**
 * Tests against the real server skip on a developer machine without one, saying why. On CI (CI=true) they never
 * skip: a CI that silently skipped its fault tests would report green for a harness whose faults were never tried.
 */
export function toxiproxyGate (needs: 'binary' | 'server'): Gate {
  const haveUrl = needs === 'server' && (process.env.TOXIPROXY_URL ?? '') !== ''
  if (haveUrl || findToxiproxyBinary() != null || onCi()) return { skip: false, title: '' }
  const reason = needs === 'binary'
    ? 'skipped: no toxiproxy-server binary (run `bash scripts/setup-toxiproxy.sh` or set TOXIPROXY_SERVER)'
    : 'skipped: no Toxiproxy (run `bash scripts/setup-toxiproxy.sh`, or set TOXIPROXY_SERVER or TOXIPROXY_URL)'
  console.warn(`[sim/faults] ${reason}`)
  return { skip: true, title: ` — ${reason}` }
}

export interface EchoServer {
  port: number
  close (): Promise<void>
}

/** A TCP server that writes back whatever it reads: the smallest upstream a proxy can stand in front of. */
export async function startEchoServer (): Promise<EchoServer> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    sockets.add(socket)
    // Toxics reset and cut connections on purpose; the echo side's errors are expected, not failures.
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    socket.pipe(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address() as net.AddressInfo
  return {
    port: address.port,
    close: async () => {
      for (const s of sockets) s.destroy()
      await Promise.race([new Promise<void>(resolve => server.close(() => resolve())), sleep(2_000)])
    }
  }
}

export interface Exchange {
  outcome: 'complete' | 'ended' | 'deadline' | 'error'
  data: Buffer
  /** From the write (or from the connect attempt, if it never connected) to the outcome. */
  elapsedMs: number
  /** How many reads delivered the data. */
  chunks: number
  errorCode?: string
}

/**
 * Connects to 127.0.0.1:port, writes `payload`, and reads until `expect` bytes arrived, the peer closed, an error,
 * or the deadline. After a complete read the socket is closed gracefully and the close awaited (bounded), so the
 * proxy's connection ends and Toxiproxy credits its byte counters.
 */
export async function exchange (port: number, payload: Buffer, opts: { deadlineMs: number, expect?: number }): Promise<Exchange> {
  const expect = opts.expect ?? payload.length
  return await new Promise(resolve => {
    let start = performance.now()
    const parts: Buffer[] = []
    let received = 0
    let done = false
    const socket = net.connect({ port, host: '127.0.0.1' })
    const finish = (outcome: Exchange['outcome'], err?: NodeJS.ErrnoException): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      const result: Exchange = { outcome, data: Buffer.concat(parts), elapsedMs: performance.now() - start, chunks: parts.length }
      if (err?.code != null) result.errorCode = err.code
      if (outcome !== 'complete') {
        socket.destroy()
        resolve(result)
        return
      }
      const closeTimer = setTimeout(() => { socket.destroy(); resolve(result) }, 2_000)
      socket.once('close', () => { clearTimeout(closeTimer); resolve(result) })
      socket.end()
    }
    const timer = setTimeout(() => finish('deadline'), opts.deadlineMs)
    socket.on('connect', () => {
      start = performance.now()
      socket.write(payload)
    })
    socket.on('data', chunk => {
      if (done) return
      parts.push(chunk)
      received += chunk.length
      if (received >= expect) finish('complete')
    })
    socket.on('end', () => finish('ended'))
    socket.on('error', err => finish('error', err))
  })
}

export function patternPayload (size: number): Buffer {
  const buf = Buffer.alloc(size)
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + (i >> 8)) & 0xff
  return buf
}



/** Pids of running processes whose command line contains every one of `parts` (Linux; [] elsewhere). */
export function pidsWithArgs (parts: string[]): number[] {
  let entries: string[]
  try {
    entries = fs.readdirSync('/proc')
  } catch {
    return []
  }
  const pids: number[] = []
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    try {
      const args = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0')
      if (parts.every(p => args.includes(p)) && isProcessAlive(Number(e))) pids.push(Number(e))
    } catch {}
  }
  return pids
}
