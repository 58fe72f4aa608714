import type { NodeSpec } from '../../scenarios/schema.ts'
import type { Backend } from '../backends/backend.ts'

type ExternalSpec = Extract<NodeSpec, { role: 'external' }>

/**
 * Where an external node runs, which decides its address: a `container` of the run has its own (its slot on the
 * run network, port 4001); a `process` on this machine listens where the run's nodes reach this machine; a node
 * chiral-sim does not start (`running`) is wherever its multiaddr says. A reference node is a container where the
 * backend runs containers (docker mode) and a process elsewhere, so one scenario file serves every mode.
 */
export function externalKind (spec: ExternalSpec, backend: Pick<Backend, 'binaryImage'>): 'container' | 'process' | 'running' {
  if (spec.image != null) return 'container'
  if (spec.reference != null) return backend.binaryImage != null ? 'container' : 'process'
  return spec.command != null ? 'process' : 'running'
}
