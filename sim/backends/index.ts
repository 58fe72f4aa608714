import type { Mode } from '../../scenarios/record.ts'
import type { Backend } from './backend.ts'
import { InProcessBackend } from './in-process.ts'

/** The backend for a mode. Process and docker backends load lazily: the in-process suite never pays for them. */
export async function createBackend (mode: Mode): Promise<Backend> {
  switch (mode) {
    case 'memory':
    case 'tcp':
      return new InProcessBackend(mode)
    case 'process': {
      const { ProcessBackend } = await import('./process.ts')
      return new ProcessBackend()
    }
    case 'docker': {
      const { DockerBackend } = await import('./docker.ts')
      return await DockerBackend.create()
    }
  }
}

export type { Backend, StartedNode, StartedBlackhole } from './backend.ts'
