import { spawn } from 'node:child_process'
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

type Libp2pModule = typeof import('./libp2p.ts')
type ChiralLibp2p = Awaited<ReturnType<Libp2pModule['createChiralLibp2p']>>

/**
 * nodes/libp2p.ts with every node it creates adjusted before its start, for a `vi.mock` factory: how the tests
 * make chiral's own node behave like a loaded client (a late dial, a late identify answer) without a hook in it.
 */
export async function adjustedLibp2p (importOriginal: () => Promise<Libp2pModule>, adjust: (libp2p: ChiralLibp2p) => void): Promise<Libp2pModule> {
  const original = await importOriginal()
  return {
    ...original,
    createChiralLibp2p: async (...args: Parameters<Libp2pModule['createChiralLibp2p']>) => {
      const libp2p = await original.createChiralLibp2p(...args)
      adjust(libp2p)
      return libp2p
    }
  }
}

/**
 * A bootstrap program started for a test, once it printed "listening on <multiaddr>" (the reference nodes' and the
 * js demo's ready line): its address, and a kill for the test's cleanup.
 */
export async function startListening (file: string, args: string[], timeoutMs = 15_000): Promise<{ address: string, kill: () => void }> {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'ignore'] })
  const kill = (): void => { child.kill('SIGKILL') }
  try {
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${file}: no "listening on" line in ${timeoutMs} ms`)) }, timeoutMs)
      child.on('exit', code => { clearTimeout(timer); reject(new Error(`${file} exited (${code}) before its ready line`)) })
      child.stdout.on('data', (d: Buffer) => {
        const m = /listening on (\S+)/.exec(d.toString())
        if (m != null) { clearTimeout(timer); resolve(m[1]!) }
      })
    })
    return { address, kill }
  } catch (err) {
    kill()
    throw err
  }
}
