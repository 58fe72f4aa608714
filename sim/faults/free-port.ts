import net from 'node:net'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. The OS picks it (bind to port 0), so two concurrent callers
 * never get the same answer from the kernel; the port is released before returning, so a caller that binds it
 * later can still lose a race with another process — callers that can, should retry on EADDRINUSE.
 */
export async function freePort (opts: { host?: string, signal?: AbortSignal } = {}): Promise<number> {
  const host = opts.host ?? '127.0.0.1'
  opts.signal?.throwIfAborted()
  const server = net.createServer()
  // Nothing should ever connect; unref so a forgotten probe can never keep the process alive.
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
