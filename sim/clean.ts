import { getContainerRuntimeClient } from 'testcontainers'
import { DockerBackend } from './backends/docker.ts'
import { reapAbandonedRuns } from './backends/docker-reaper.ts'
import { reapOrphanedToxiproxyServers } from './faults/toxiproxy-server.ts'
import { reapAbandonedSwarmRuns } from './backends/swarm/swarm.ts'

/**
 * `chiral-sim clean`: removes what runs whose harness died left behind — toxiproxy-servers, docker-mode containers
 * and networks, swarm-mode services, secrets, configs and networks (when the engine is a swarm manager) — and never
 * what a live run is using. Docker and swarm runs do the same at their start; this is for a machine that will not
 * start another run soon, or for `--all`.
 */

export interface CleanResult {
  lines: string[]
  ok: boolean
}

export async function clean (options: { all: boolean, engineTimeoutMs?: number }): Promise<CleanResult> {
  const lines: string[] = []
  let ok = true
  const killed = reapOrphanedToxiproxyServers()
  lines.push(killed.length === 0
    ? 'toxiproxy: no orphaned server'
    : `toxiproxy: killed ${killed.length} orphaned server${killed.length > 1 ? 's' : ''} (pid ${killed.join(', ')})`)

  const engine = await DockerBackend.available(options.engineTimeoutMs ?? 5_000)
  if (!engine.ok) {
    lines.push(`docker: nothing to clean (${engine.reason})`)
    return { lines, ok }
  }
  const client = await getContainerRuntimeClient()
  // Swarm first: removing a service removes its task containers, which the docker reaper leaves to it.
  const info = await client.container.dockerode.info() as { Swarm?: { LocalNodeState?: string, ControlAvailable?: boolean } }
  if (info.Swarm?.ControlAvailable === true) {
    const swarm = await reapAbandonedSwarmRuns(client.container.dockerode, { all: options.all })
    const kinds = [['service', swarm.services], ['secret', swarm.secrets], ['config', swarm.configs], ['network', swarm.networks]] as const
    const removed = kinds.filter(([, names]) => names.length > 0)
    lines.push(removed.length === 0 ? 'swarm: nothing abandoned' : `swarm: removed ${removed.map(([kind, names]) => `${names.length} ${kind}(s): ${names.join(', ')}`).join('; ')}`)
    if (swarm.unknownRuns.length > 0) {
      lines.push(`swarm: left ${swarm.unknownRuns.length} run(s) whose harness cannot be checked from here (another machine's, or from a chiral-sim without owner labels): ${swarm.unknownRuns.join(', ')}; "chiral-sim clean --all" removes them, when no other run uses this swarm`)
    }
    for (const error of swarm.errors) {
      ok = false
      lines.push(`swarm: could not remove ${error}`)
    }
  } else if (info.Swarm?.LocalNodeState === 'active') {
    lines.push('swarm: this engine is a swarm worker; swarm runs are cleaned through a manager (DOCKER_HOST=<manager> chiral-sim clean)')
  }
  const reaped = await reapAbandonedRuns(client, { all: options.all })
  lines.push(reaped.containers.length === 0 ? 'docker: no abandoned container' : `docker: removed ${reaped.containers.length} container(s): ${reaped.containers.join(', ')}`)
  lines.push(reaped.networks.length === 0 ? 'docker: no abandoned network' : `docker: removed ${reaped.networks.length} network(s): ${reaped.networks.join(', ')}`)
  if (reaped.unknownRuns.length > 0) {
    lines.push(`docker: left ${reaped.unknownRuns.length} run(s) whose harness cannot be checked from here (another machine's, or from a chiral-sim without owner labels): ${reaped.unknownRuns.join(', ')}; "chiral-sim clean --all" removes them, when no other run uses this engine`)
  }
  for (const error of reaped.errors) {
    ok = false
    lines.push(`docker: could not remove ${error}`)
  }
  return { lines, ok }
}
