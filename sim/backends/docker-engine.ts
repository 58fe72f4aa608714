import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Readable } from 'node:stream'
import { GenericContainer, getContainerRuntimeClient, type ContainerRuntimeClient } from 'testcontainers'
import { withDeadline } from '../../nodes/util.ts'
import { appendTail } from './output-tail.ts'

/**
 * The Docker engine as the container backends (docker, swarm) reach it through testcontainers, and the small
 * things every container needs of it: publishing on one address, reading its output, removing it idempotently.
 */

export type Dockerode = ContainerRuntimeClient['container']['dockerode']

/** The engine's client, or an error saying none answered in time. */
export async function connectEngine (timeoutMs: number): Promise<ContainerRuntimeClient> {
  // Ryuk, testcontainers' reaper, is an image to pull; the backends remove their own containers instead.
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
  return await withDeadline(getContainerRuntimeClient(), timeoutMs, `no Docker engine answered within ${timeoutMs} ms`)
}

/** Whether an engine answers, and if not why: tests skip (or, under CI, fail) with this reason. */
export async function engineAvailable (timeoutMs: number): Promise<{ ok: true, host: string } | { ok: false, reason: string }> {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
  try {
    const client = await withDeadline(getContainerRuntimeClient(), timeoutMs, `no answer within ${timeoutMs} ms`)
    await withDeadline(client.container.dockerode.ping(), timeoutMs, `no answer to ping within ${timeoutMs} ms`)
    return { ok: true, host: client.info.containerRuntime.host }
  } catch (err) {
    return { ok: false, reason: `no Docker engine (DOCKER_HOST=${process.env.DOCKER_HOST ?? 'unset'}): ${(err as Error).message}` }
  }
}

/**
 * Whether the engine runs on this machine, so publishing on loopback reaches it: reached over a local socket, or at
 * one of this machine's own addresses. testcontainers names the bridge's gateway (172.17.0.1) as the host whenever
 * /.dockerenv exists, CI runners among them, although the engine is this machine's: judging by that name alone
 * published the control channel on every interface there.
 */
export async function engineIsLocal (client: ContainerRuntimeClient): Promise<boolean> {
  // dockerode's modem holds a socket path exactly when it talks to the engine over a local socket (unix or npipe).
  const modem = (client.container.dockerode as unknown as { modem?: { socketPath?: unknown } }).modem
  if (typeof modem?.socketPath === 'string' && modem.socketPath !== '') return true
  const host = client.info.containerRuntime.host
  if (host === 'localhost') return true
  const address = await literalAddress(host)
  return isLoopbackAddress(address) || ownAddresses().includes(address)
}

function ownAddresses (): string[] {
  return Object.values(networkInterfaces()).flat().filter(i => i != null).map(i => i!.address)
}

/** A GenericContainer whose published ports bind one host address instead of all of them. */
export class PublishingContainer extends GenericContainer {
  publishOn (hostIp: string): this {
    for (const bindings of Object.values(this.hostConfig.PortBindings ?? {}) as Array<Array<{ HostIp?: string }>>) {
      for (const binding of bindings) binding.HostIp = hostIp
    }
    return this
  }
}

/** The engine's refusal of a host port somebody else holds (docker-proxy's bind, or its own allocator). */
export function isPortTaken (err: unknown): boolean {
  return /address already in use|port is already allocated/i.test(err instanceof Error ? err.message : String(err))
}

export async function literalAddress (host: string): Promise<string> {
  return isIP(host) !== 0 ? host : (await lookup(host)).address
}

export function isLoopbackAddress (ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.')
}

export function capture (stream: Readable, into: { text: string }): void {
  stream.on('data', (chunk: Buffer | string) => { into.text = appendTail(into.text, chunk.toString()) })
  // The stream ends (or errors) with the container; neither is news.
  stream.on('error', () => {})
}

/** dockerode rejects with `statusCode`; these ones mean "already done". */
export function ignoreStatus (...codes: number[]): (err: unknown) => void {
  return err => {
    if (!codes.includes((err as { statusCode?: number }).statusCode ?? -1)) throw err
  }
}

export async function waitForExit (container: ReturnType<Dockerode['getContainer']>, timeoutMs: number): Promise<boolean> {
  try {
    const state = (await container.inspect()).State
    if (!state.Running) return true
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return true
    throw err
  }
  return await withDeadline(container.wait().then(() => true), timeoutMs, '').catch(() => false)
}
