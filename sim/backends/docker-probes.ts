import type { ContainerRuntimeClient } from 'testcontainers'
import type { ProbeResult } from '../../nodes/supervisor/supervisor.ts'
import { withDeadline } from '../../nodes/util.ts'
import { LIBP2P_PORT, NODE_BINARY_IN_IMAGE } from './docker-image.ts'
import type { Dockerode } from './docker-engine.ts'
import type { DockerNode } from './docker-node.ts'

/** The supervisor's process and port checks (plan Solution #4) for a node in a container. */

export async function containerProbe (docker: Dockerode, node: DockerNode): Promise<ProbeResult> {
  if (node.goneAt != null) return { ok: false, detail: 'container was stopped or killed', since: node.goneAt }
  try {
    const state = (await docker.getContainer(node.containerId).inspect()).State
    // A paused (frozen) container is alive: as with SIGSTOP, only the ping can tell it is hung.
    if (state.Running) return { ok: true, detail: `container ${node.containerId.slice(0, 12)} running${state.Paused ? ' (paused)' : ''}` }
    const finished = Date.parse(state.FinishedAt)
    return { ok: false, detail: `container ${node.containerId.slice(0, 12)} ${state.Status} (exit code ${state.ExitCode}${state.OOMKilled ? ', OOM-killed' : ''})`, ...(Number.isFinite(finished) && finished > 0 ? { since: finished } : {}) }
  } catch (err) {
    return { ok: false, detail: `container ${node.containerId.slice(0, 12)} is gone: ${(err as Error).message}` }
  }
}

/** Connects to the libp2p port from inside the node's namespace: through the published port, docker-proxy would accept for a dead node. */
export async function portProbe (client: ContainerRuntimeClient, node: DockerNode, signal: AbortSignal): Promise<ProbeResult> {
  const script = `require("net").connect(${LIBP2P_PORT},${JSON.stringify(node.slot.ip)}).on("connect",()=>process.exit(0)).on("error",e=>{console.error(e.code||e.message);process.exit(1)})`
  const exec = client.container.exec(client.container.dockerode.getContainer(node.containerId), [NODE_BINARY_IN_IMAGE, '-e', script])
  const result = await withDeadline(exec, undefined, 'port check aborted', signal)
  return result.exitCode === 0
    ? { ok: true, detail: `${node.slot.ip}:${LIBP2P_PORT} accepts connections` }
    : { ok: false, detail: `${node.slot.ip}:${LIBP2P_PORT}: ${result.output.trim() === '' ? `exit code ${result.exitCode}` : result.output.trim()}` }
}
