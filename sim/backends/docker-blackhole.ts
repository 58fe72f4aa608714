import { fileURLToPath } from 'node:url'
import { GenericContainer, Wait } from 'testcontainers'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TCP_BLACKHOLE_READY } from '../host/tcp-blackhole.ts'
import type { StartedBlackhole } from './backend.ts'
import type { RunContainers } from './docker-containers.ts'
import { LIBP2P_PORT, NODE_BINARY_IN_IMAGE } from './docker-image.ts'

const TCP_BLACKHOLE_FILE = fileURLToPath(new URL('../host/tcp-blackhole.ts', import.meta.url))
/** Next to the image's package.json ("type": "module"), so its node runs the file as the ES module it is. */
const TCP_BLACKHOLE_IN_IMAGE = '/app/tcp-blackhole.ts'

/**
 * A container on the run's network that accepts connections and never answers (the plan's hung bootstrap): the
 * harness's own blackhole (sim/host/tcp-blackhole.ts), run by the node image's node, so there is one blackhole,
 * not two. It needs no slot: nothing restarts it at the same address.
 */
export async function startBlackholeContainer (containers: RunContainers, image: string, name: string, startTimeoutMs: number, signal: AbortSignal, onClosed: (hole: StartedBlackhole) => void): Promise<StartedBlackhole> {
  const containerName = containers.nextName(name)
  const container = new GenericContainer(image)
    .withName(containerName)
    .withLabels(containers.labels(name))
    .withNetwork(containers.network)
    .withCopyFilesToContainer([{ source: TCP_BLACKHOLE_FILE, target: TCP_BLACKHOLE_IN_IMAGE }])
    .withEntrypoint([NODE_BINARY_IN_IMAGE, TCP_BLACKHOLE_IN_IMAGE, String(LIBP2P_PORT)])
    .withCommand([])
    .withWaitStrategy(Wait.forLogMessage(TCP_BLACKHOLE_READY))
    .withStartupTimeout(startTimeoutMs)
  const started = await containers.start(container, containerName, signal)
  // A real-looking /p2p/ suffix lets the dialer get as far as the security handshake, as with sim/host/blackhole.ts.
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const id = started.getId()
  let closed: Promise<void> | undefined
  const hole: StartedBlackhole = {
    multiaddr: `/ip4/${started.getIpAddress(containers.network.getName())}/tcp/${LIBP2P_PORT}/p2p/${peerId}`,
    close: async () => {
      closed ??= (async () => { await containers.remove(id); onClosed(hole) })()
      await closed
    },
    [Symbol.asyncDispose]: async () => { await hole.close() }
  }
  return hole
}
