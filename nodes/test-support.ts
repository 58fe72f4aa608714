import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { memory } from '@libp2p/memory'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { ServiceMap } from '@libp2p/interface'

/**
 * A plain js-libp2p node on the memory transport, not chiral's node class: what the tests' stock or stub
 * bootstraps share. The caller names the services (the behaviour under test) and stops the node.
 */
export async function stockMemoryNode<T extends ServiceMap> (name: string, services: Libp2pOptions<T>['services']): Promise<Awaited<ReturnType<typeof createLibp2p<T>>>> {
  return await createLibp2p<T>({
    addresses: { listen: [`/memory/${name}-${process.pid}`] },
    transports: [memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    services
  })
}
