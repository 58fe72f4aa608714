import net from 'node:net'
import { describe, expect, it } from 'vitest'
import { freePort } from './free-port.ts'

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
})
