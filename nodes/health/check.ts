import { multiaddr } from '@multiformats/multiaddr'
import { askHello } from '../hello.ts'
import type { NodeContext } from '../context.ts'
import type { BootstrapHealth } from '../schemas.ts'
import { deadline, describeError, peerIdOfAddr } from '../util.ts'
import { pingPeer } from '../ping.ts'

/**
 * Plan Solution #2.2: one health check of a bootstrap. Latency is a libp2p ping round trip (Solution #4 check 3:
 * a DHT that does not answer within 5 s is frozen); the peer count comes from the bootstrap's hello answer, or,
 * for a bootstrap that does not speak it, from the peers this node learned since connecting.
 */
export async function checkBootstrapHealth (ctx: NodeContext, address: string, outer?: AbortSignal): Promise<BootstrapHealth> {
  const { signal, timedOut } = deadline(ctx.timing.healthPingTimeoutMs, AbortSignal.any([ctx.stopSignal, ...(outer != null ? [outer] : [])]))
  const lastCheckTimestamp = Date.now()
  try {
    const id = peerIdOfAddr(address)
    const latencyMs = await pingPeer(ctx, multiaddr(address), id ?? address, signal, { holdProtocol: ctx.config.dht.protocol })
    const connection = ctx.libp2p.getConnections().find(c => c.remotePeer.toString() === id && c.status === 'open')
    const hello = connection == null ? null : await askHello(connection, signal).catch(() => null)
    ctx.bootstrapLatency.set(address, latencyMs)
    return {
      address,
      isReachable: true,
      latencyMs,
      lastCheckTimestamp,
      errorMessage: null,
      peerCountViaBootstrap: hello != null ? Math.max(0, hello.peers - 1) : ctx.discovered.size
    }
  } catch (err) {
    return {
      address,
      isReachable: false,
      latencyMs: null,
      lastCheckTimestamp,
      errorMessage: timedOut() ? `no ping answer within ${ctx.timing.healthPingTimeoutMs} ms` : describeError(err),
      peerCountViaBootstrap: 0
    }
  }
}
