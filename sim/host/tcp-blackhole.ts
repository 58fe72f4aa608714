import net from 'node:net'

/**
 * The TCP half of a blackhole: a listener that accepts every connection and never says a word. It imports nothing
 * but node:net, so the docker backend can copy this very file into a node image container and run it there
 * (`node tcp-blackhole.ts PORT` prints TCP_BLACKHOLE_READY once listening); blackhole.ts uses it in-process.
 */

export const TCP_BLACKHOLE_READY = 'TCP_BLACKHOLE_READY'

export interface TcpHolder {
  readonly address: net.AddressInfo
  /** Drops every held connection and stops listening. Idempotent. */
  close(): Promise<void>
}

export async function holdTcp (host: string, port: number): Promise<TcpHolder> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer(socket => {
    sockets.add(socket)
    // The dialer gives up and resets; that is the expected end of every held socket, not a failure.
    socket.on('error', () => {})
    socket.on('close', () => { sockets.delete(socket) })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  let closed: Promise<void> | undefined
  return {
    address: server.address() as net.AddressInfo,
    close: async () => {
      closed ??= new Promise<void>(resolve => {
        // server.close() waits for open sockets, so they must go first or close would hang until the dialers quit.
        for (const socket of sockets) socket.destroy()
        server.close(() => { resolve() })
      })
      await closed
    }
  }
}

if (import.meta.main) {
  const holder = await holdTcp('0.0.0.0', Number(process.argv[2]))
  console.log(TCP_BLACKHOLE_READY)
  // docker stop sends SIGTERM; a process that ignores it would hold the stop for its whole grace period.
  process.on('SIGTERM', () => { void holder.close().then(() => process.exit(0)) })
}
