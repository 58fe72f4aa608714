import { getContainerRuntimeClient } from 'testcontainers'
import { DockerBackend } from './backends/docker.ts'
import { reapAbandonedRuns } from './backends/docker-reaper.ts'
import { reapOrphanedToxiproxyServers } from './faults/toxiproxy-server.ts'

/**
 * `chiral-sim clean`: removes what runs whose harness died left behind — toxiproxy-servers, and docker-mode
 * containers and networks — and never what a live run is using. Docker runs do the same at their start; this is for
 * a machine that will not start another docker run soon, or for `--all`.
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
  const reaped = await reapAbandonedRuns(await getContainerRuntimeClient(), { all: options.all })
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
