import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { candidateRange, freePort } from './free-port.ts'

describe('freePort', () => {
  it('returns a loopback port that can then be bound', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThan(0)
    const server = net.createServer()
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, '127.0.0.1', () => resolve())
      })
    } finally {
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  })

  it('honours an aborted signal', async () => {
    await expect(freePort({ signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow('stop')
  })

  it('chooses outside the kernel\'s ephemeral range, where listen(0) and outgoing connections take their ports', async () => {
    const [low, high] = candidateRange()
    expect(low).toBeGreaterThanOrEqual(1_024)
    const range = '/proc/sys/net/ipv4/ip_local_port_range'
    const ephemeralLow = existsSync(range) ? Number(readFileSync(range, 'utf8').trim().split(/\s+/)[0]) : 32_768
    expect(high).toBeLessThan(ephemeralLow)
    const ports = await Promise.all(Array.from({ length: 20 }, async () => await freePort()))
    for (const p of ports) expect(p >= low && p <= high).toBe(true)
    // Random within the range, so concurrent runs do not line up on the same ports.
    expect(new Set(ports).size).toBeGreaterThan(15)
  })
})
