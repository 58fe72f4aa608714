import type { Connection, Stream } from '@libp2p/interface'
import type { NodeContext } from './context.ts'

/**
 * A stream opened on a new connection in the very event that announces it, to keep the connection open against a
 * bootstrap that closes idle connections (rust-libp2p ≤ 0.54: idle timeout 0). Such a bootstrap closes a connection
 * as soon as identify's streams end and nothing else is open; a stream opened after dial() returned loses that race
 * on a loaded client, on connection after connection. Opened synchronously in libp2p's `connection:open` event,
 * its SYN leaves in the same tick as identify's own, before our answer to the bootstrap's identify can.
 * (rust-libp2p can still close a connection at its very start, before any stream arrives: callers retry.)
 */
export interface EarlyStreams {
  /** The stream opened on `connection`, handed over once; undefined if it was not a new connection to the target. */
  take: (connection: Connection) => Promise<Stream> | undefined
  /** Stops watching and closes the streams nobody took (another connection to the same remote). */
  stop: () => void
}

/**
 * Opens a `protocol` stream on every new outbound connection to the target until stop(): the target is a peer ID
 * when known, otherwise the address the connection must start with.
 */
export function openOnArrival (ctx: NodeContext, target: { peerId?: string, addr?: string }, protocol: string, signal: AbortSignal): EarlyStreams {
  const opened = new Map<Connection, Promise<Stream>>()
  const ours = (connection: Connection): boolean => connection.direction === 'outbound' && (target.peerId != null
    ? connection.remotePeer.toString() === target.peerId
    : target.addr != null && connection.remoteAddr.toString().startsWith(target.addr))
  const onOpen = (ev: CustomEvent<Connection>): void => {
    const connection = ev.detail
    if (signal.aborted || !ours(connection) || opened.has(connection)) return
    const stream = connection.newStream(protocol, { signal })
    stream.catch(() => {})
    opened.set(connection, stream)
  }
  ctx.libp2p.addEventListener('connection:open', onOpen)
  return {
    take: (connection) => {
      const stream = opened.get(connection)
      opened.delete(connection)
      return stream
    },
    stop: () => {
      ctx.libp2p.removeEventListener('connection:open', onOpen)
      for (const stream of opened.values()) {
        void stream.then(s => s.close().catch(() => { s.abort(new Error('no longer needed')) }), () => {})
      }
      opened.clear()
    }
  }
}
