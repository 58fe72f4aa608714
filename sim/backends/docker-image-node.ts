import { Wait, type StartedTestContainer } from 'testcontainers'
import type { ImageNodeOptions, StartedImageNode } from './backend.ts'
import type { RunContainers } from './docker-containers.ts'
import { ignoreStatus } from './docker-engine.ts'
import { inSlot, type Slot } from './docker-slots.ts'

/**
 * A third-party image (an external bootstrap: a rust-libp2p or go-libp2p node) run in its own slot, so a restart
 * comes back at the same address. The runner treats it as a black box: no control channel, only its output and
 * what the peers see of it.
 */
export async function startImageNode (containers: RunContainers, slot: Slot, options: ImageNodeOptions, stopTimeoutMs: number, signal: AbortSignal): Promise<StartedImageNode> {
  const { container, containerName, logs } = inSlot(containers, options.image, slot, options.startTimeoutMs)
  container.withCommand(options.args)
  // It shares its slot's network namespace, so it exposes no port to check: a ready line, or the runner's ping, decides.
  if (options.readyLine != null) container.withWaitStrategy(Wait.forLogMessage(options.readyLine))
  let started: StartedTestContainer
  try {
    started = await containers.start(container, containerName, signal)
  } catch (err) {
    throw new Error(`external node "${options.name}" (image ${options.image}, container ${containerName}) did not start: ${(err as Error).message}${logs.text.trim() === '' ? '' : `; its output:\n${logs.text.trim()}`}`)
  }
  const id = started.getId()
  const { docker } = containers
  return {
    logs: () => logs.text,
    kill: async () => {
      await docker.getContainer(id).kill({ signal: 'SIGKILL' }).catch(ignoreStatus(404, 409))
      await containers.remove(id)
    },
    stop: async () => {
      await docker.getContainer(id).stop({ t: Math.max(1, Math.ceil(stopTimeoutMs / 1000)) }).catch(ignoreStatus(304, 404))
      await containers.remove(id)
    }
  }
}
