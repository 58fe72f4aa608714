import net from 'node:net'

/** A loopback port that was free a moment ago (nodes/ cannot borrow sim/faults/free-port.ts: it knows nothing of sim/). */
export async function freePortForTest (): Promise<number> {
  const server = net.createServer()
  server.unref()
  return await new Promise<number>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => { resolve(port) })
    })
  })
}
