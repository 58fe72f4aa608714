import { scaled, type NodeConfig } from '../../nodes/config.ts'
import { CONTROL_TOKEN_FLAG, writeControlTokenFile } from '../../nodes/control/token.ts'
import { tcpHostPort } from '../../nodes/supervisor/probes.ts'
import { referencePeerUnsupported, type ForeignPeerImplementation } from '../../scenarios/reference-peer.ts'
import { ChildNode, nodeReadyLine, type NodeReady } from '../host/child.ts'
import { referenceBinaryMissing, referenceBinaryPath } from '../interop/binaries.ts'

/**
 * A peer of another implementation (interop/go, interop/rust) as a child process serving the control channel: started like a
 * chiral node (a fresh token in a 0600 file that is deleted once it is ready, loopback control port, the same
 * CHIRAL_READY line, exit when its stdin closes), so the backend wraps it in the same handle as its own nodes.
 */

/** The node's flags for `config`; throws, naming the field, for what it cannot be configured with. */
export function referencePeerArgs (impl: ForeignPeerImplementation, config: NodeConfig): string[] {
  const unsupported = referencePeerUnsupported(impl, config)
  if (unsupported.length > 0) {
    throw new Error(`${impl} peer "${config.name}": ${unsupported.map(u => `${u.field}: ${u.message}`).join('; ')}`)
  }
  const listen = config.listen?.[0]
  const { host, port } = listen != null ? tcpHostPort(listen) : { host: '127.0.0.1', port: 0 }
  const t = scaled(config.timing)
  return [
    '--name', config.name,
    '--host', host, '--port', String(port),
    '--seed', config.identitySeed,
    '--dht-protocol', config.dht.protocol,
    '--kad-mode', config.dht.mode,
    ...(config.dht.addressMapper === 'removePrivate' ? ['--routable-only'] : []),
    ...(config.agentVersion != null ? ['--agent-version', config.agentVersion] : []),
    ...config.bootstrapAddrs.flatMap(a => ['--bootstrap', a]),
    '--timing', JSON.stringify(t),
    ...(config.autoMonitor ? [] : ['--no-auto-monitor']),
    '--control-host', '127.0.0.1', '--control-port', '0',
    '--exit-on-stdin-close'
  ]
}

export interface SpawnReferencePeerOptions {
  startTimeoutMs: number
  signal?: AbortSignal | undefined
  env?: NodeJS.ProcessEnv | undefined
}

export async function spawnReferencePeer (impl: ForeignPeerImplementation, config: NodeConfig, options: SpawnReferencePeerOptions): Promise<ChildNode> {
  const missing = referenceBinaryMissing(impl)
  if (missing != null) throw new Error(`${impl} peer "${config.name}" cannot start: ${missing}`)
  const args = referencePeerArgs(impl, config)
  const tokenFile = writeControlTokenFile()
  try {
    return await ChildNode.spawnCommand<NodeReady>({
      name: config.name,
      file: referenceBinaryPath(impl),
      args: [...args, CONTROL_TOKEN_FLAG, tokenFile.path],
      ...(options.env != null ? { env: options.env } : {}),
      readyLine: nodeReadyLine(tokenFile.token),
      // Its stdin tie covers a harness that exits; the kernel's covers one killed outright.
      dieWithParent: true,
      startTimeoutMs: options.startTimeoutMs,
      signal: options.signal
    })
  } finally {
    tokenFile.remove()
  }
}
