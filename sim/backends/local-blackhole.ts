import type { Transport } from '../../nodes/config.ts'
import { startBlackhole } from '../host/blackhole.ts'
import type { StartedBlackhole } from './backend.ts'

/**
 * A blackhole in the harness's own process, for backends whose nodes reach this machine (memory, tcp, shards,
 * process): it has no behaviour worth a process of its own, a listener here holds sockets just as well. It is kept
 * in `running` until closed, so the backend's disposal closes what a scenario left open.
 */
export async function startLocalBlackhole (transport: Transport, name: string, running: Set<StartedBlackhole>): Promise<StartedBlackhole> {
  const hole = await startBlackhole({ transport, name })
  const started: StartedBlackhole = {
    multiaddr: hole.multiaddr,
    close: async () => { await hole.close(); running.delete(started) },
    [Symbol.asyncDispose]: async () => { await started.close() }
  }
  running.add(started)
  return started
}
