import path from 'node:path'
import { ChildNode } from '../host/child.ts'
import type { NodeEventBody } from '../../nodes/events.ts'
import { createPinger, type Identified } from '../../nodes/supervisor/probes.ts'
import type { NodeSpec } from '../../scenarios/schema.ts'
import type { Mode } from '../../scenarios/record.ts'
import type { RunContext } from './context.ts'
import type { StartedExternal } from './node-state.ts'
import type { RunNode } from './roster.ts'
import { appendTail } from '../backends/output-tail.ts'
import { referenceBinaryMissing, referenceBinaryPath, referenceImageRepo, type ReferenceImpl } from '../interop/binaries.ts'
import { externalKind } from './external-kind.ts'

/**
 * External nodes: bootstraps chiral-sim did not build, started from the scenario's command, image or reference
 * node and treated as black boxes. The runner never asks them anything except through libp2p (a ping and identify here; DHT queries and
 * connections through the peers), so the same scenarios can test a rust-libp2p or go-libp2p bootstrap binary.
 */

/** The external node is a process on this machine that peers reach over TCP (containers at the run network's gateway). */
export const EXTERNAL_MODES: Mode[] = ['tcp', 'shards', 'process', 'docker']

type ExternalSpec = Extract<NodeSpec, { role: 'external' }>
type ProbeEvent = Extract<NodeEventBody, { type: 'external:probe' }>

/** Output lines recorded per start: enough to read a start-up and its first complaints, not a debug log. */
const OUTPUT_LINES_KEPT = 200
const STOP_GRACE_MS = 5_000

/** The command with `{port}`, `{host}` and `{node}` filled in from the node's resolved address. */
export function externalCommand (spec: ExternalSpec, address: string): string[] {
  const port = /\/tcp\/([0-9]+)/.exec(address)?.[1] ?? ''
  const host = /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(address)?.[1] ?? ''
  return (spec.command ?? []).map(arg => arg.replaceAll('{port}', port).replaceAll('{host}', host).replaceAll('{node}', process.execPath))
}

/**
 * Starts (or, with neither command nor image, finds) an external node and probes it: ready means it answers a
 * libp2p ping at its multiaddr. What it says about itself through identify goes into an `external:probe` event,
 * including whether it serves the scenario's DHT protocol.
 */
export async function startExternal (ctx: RunContext, node: RunNode): Promise<StartedExternal | undefined> {
  const spec = node.spec as ExternalSpec
  if (!EXTERNAL_MODES.includes(ctx.backend.mode)) {
    throw new Error(`external node "${node.name}" is a process on this machine reached over TCP; run the scenario with --mode ${EXTERNAL_MODES.join(', ')}`)
  }
  const address = node.address!
  if (ctx.backend.mode === 'docker' && /^\/ip4\/127\.|^\/ip6\/::1\//.test(address)) {
    throw new Error(`external node "${node.name}" listens on loopback (${address}), which containers cannot reach: ${spec.command != null || spec.image != null
      ? 'write its multiaddr as /ip4/{host}/tcp/… and pass {host} to its command'
      : 'give an address the run network reaches (this machine\'s gateway address on it, or another host)'}`)
  }
  const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(spec.startTimeoutMs)])
  const kind = externalKind(spec, ctx.backend)
  const launched = kind === 'container' ? await launchImage(ctx, node, spec) : kind === 'process' ? await launchCommand(ctx, node, spec) : undefined
  if (launched != null) node.outputs.push(launched.output)
  try {
    const probe = await probeUntilAnswered(address, spec.dhtProtocol, deadline, () => launched?.ended(), detail => {
      ctx.evidence.emit(node.name, { type: 'log', level: 'warn', message: `start-up probe: ${detail}; trying again on a fresh connection` })
    })
    ctx.evidence.emit(node.name, probe.event)
    if (!probe.event.ok) {
      const tail = launched?.output().trim() ?? ''
      throw new Error(`external node "${node.name}" does not answer a libp2p ping at ${address}: ${probe.event.detail}` +
        `${launched == null ? ' (no command, image or reference: it must already be running there)' : ''}${tail === '' ? '' : `; its output ends:\n${tail.split('\n').slice(-10).join('\n')}`}`)
    }
    if (probe.event.speaksDht === false) {
      ctx.evidence.emit(node.name, { type: 'log', level: 'warn', message: `does not announce ${spec.dhtProtocol} through identify (it speaks ${probe.event.protocols.join(', ') || 'nothing'}): peers will not find each other through it (cause 7)` })
    }
  } catch (err) {
    await launched?.kill().catch(() => {})
    throw err
  }
  ctx.evidence.emit(node.name, { type: 'node:started', peerId: node.peerId ?? '', multiaddrs: [address] })
  if (launched == null) return undefined
  return {
    stop: async () => { await launched.stop(); ctx.evidence.emit(node.name, { type: 'node:stopped' }) },
    kill: async () => { await launched.kill(); ctx.evidence.emit(node.name, { type: 'node:stopped' }) }
  }
}

/** What the runner holds of an external node it started, whether a process or a container. */
interface Launched {
  stop(): Promise<void>
  kill(): Promise<void>
  /** Why it is gone, once it is. */
  ended(): string | undefined
  output(): string
}

/** The reference node's flag that ends it with its parent: a process of the harness needs it, a container must not have it (its stdin is closed from the start). */
const EXIT_WITH_PARENT = '--exit-on-stdin-close'

/** A reference node's binary, or why there is none (how to build it). */
function referenceBinary (node: RunNode, impl: ReferenceImpl): string {
  const missing = referenceBinaryMissing(impl)
  if (missing != null) throw new Error(`external node "${node.name}" is the ${impl} reference node, but there is ${missing}`)
  return referenceBinaryPath(impl)
}

async function launchCommand (ctx: RunContext, node: RunNode, spec: ExternalSpec): Promise<Launched> {
  const command = externalCommand(spec, node.address!)
  const [file, ...args] = spec.reference == null
    ? command
    : [referenceBinary(node, spec.reference), ...command, ...(command.includes(EXIT_WITH_PARENT) ? [] : [EXIT_WITH_PARENT])]
  let kept = 0
  let output = ''
  const child = await ChildNode.spawnCommand<string | undefined>({
    name: node.name,
    file: file!,
    args,
    cwd: ctx.baseDir,
    ...(spec.readyLine != null ? { readyLine: (line: string) => line.includes(spec.readyLine!) ? line : undefined, readyOnStderr: true } : {}),
    onLine: (line, stream) => {
      output = appendTail(output, `${line}\n`)
      if (line.trim() === '' || kept > OUTPUT_LINES_KEPT) return
      kept++
      ctx.evidence.emit(node.name, { type: 'log', level: stream === 'stderr' ? 'warn' : 'info', message: kept > OUTPUT_LINES_KEPT ? `(further output of ${path.basename(file!)} not recorded)` : line.slice(0, 500) })
    },
    // It cannot watch its stdin as chiral nodes do: the kernel ends it if the harness is killed outright.
    dieWithParent: true,
    startTimeoutMs: spec.startTimeoutMs,
    signal: ctx.signal
  })
  return {
    stop: async () => { await child.terminate(STOP_GRACE_MS) },
    kill: async () => { await child.kill() },
    ended: () => child.exited ? `its process ended (${child.exitStatus ?? '?'})` : undefined,
    output: () => output
  }
}

async function launchImage (ctx: RunContext, node: RunNode, spec: ExternalSpec): Promise<Launched> {
  if (ctx.backend.startImage == null) throw new Error(`external node "${node.name}" is an image: run the scenario with --mode docker`)
  // The runner probes the container from this machine: only a local engine's containers are reachable from here.
  await ctx.backend.hostAddress(ctx.signal)
  let image = spec.image
  let args = externalCommand(spec, node.address!)
  if (spec.reference != null) {
    if (ctx.backend.binaryImage == null) throw new Error(`external node "${node.name}": the ${ctx.backend.mode} backend cannot run a reference node as a container`)
    image = await ctx.backend.binaryImage(referenceImageRepo(spec.reference), referenceBinary(node, spec.reference), ctx.signal)
    args = args.filter(a => a !== EXIT_WITH_PARENT)
  }
  const container = await ctx.backend.startImage({
    name: node.name, image: image!, args, readyLine: spec.readyLine, startTimeoutMs: spec.startTimeoutMs
  }, ctx.signal)
  return { stop: container.stop, kill: container.kill, ended: () => undefined, output: container.logs }
}

/**
 * Probes until the node answers a ping on a fresh connection, or the deadline. Each new kind of failure is said
 * once (a start-up that takes a while is normal; one that keeps failing the same way should be visible early).
 */
async function probeUntilAnswered (address: string, dhtProtocol: string, signal: AbortSignal, gone: () => string | undefined, onFailure: (detail: string) => void): Promise<{ event: ProbeEvent }> {
  await using pinger = await createPinger({ identify: true })
  let last = 'not probed'
  const said = new Set<string>()
  while (!signal.aborted) {
    const ended = gone()
    if (ended != null) { last = ended; break }
    const attempt = AbortSignal.any([signal, AbortSignal.timeout(5_000)])
    const r = await pinger.probe(address, attempt, dhtProtocol)
    if (r.ok) return { event: probeEvent(true, r.latencyMs ?? null, r.detail, dhtProtocol, r.identified) }
    last = r.detail
    // Refused connections are the usual start-up; anything else is news.
    const kind = r.detail.replace(/[0-9]+/g, '#')
    if (!said.has(kind) && !/ECONNREFUSED/.test(r.detail) && !signal.aborted) { said.add(kind); onFailure(r.detail) }
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  return { event: probeEvent(false, null, signal.aborted ? `no answer before the start deadline (last: ${last})` : last, dhtProtocol, undefined) }
}

function probeEvent (ok: boolean, latencyMs: number | null, detail: string, dhtProtocol: string, identified: Identified | undefined): ProbeEvent {
  return {
    type: 'external:probe',
    ok,
    latencyMs,
    detail,
    ...(identified?.agentVersion != null ? { agentVersion: identified.agentVersion } : {}),
    protocols: identified?.protocols ?? [],
    dhtProtocol,
    speaksDht: identified == null ? null : identified.protocols.includes(dhtProtocol)
  }
}
