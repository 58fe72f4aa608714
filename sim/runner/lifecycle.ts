import type { NodeEventBody } from '../../nodes/events.ts'
import { canSupervise } from '../backends/supervise.ts'
import type { StartedNode } from '../backends/backend.ts'
import type { RunContext } from './context.ts'
import type { RunNode } from './roster.ts'
import { isUp, type NodeState, type Phase, type Running } from './node-state.ts'
import { startExternal } from './external.ts'
import { proxiedAddr } from './link-wiring.ts'
import { REFERENCE_PEER_MODES } from '../../scenarios/reference-peer.ts'

/**
 * A node's lifecycle in a run: start (a chiral node, a blackhole or an external node), supervision of a bootstrap
 * that asks for it, stop, kill and teardown. This is the one module that moves a node between the phases of
 * node-state.ts; the steps that start and stop nodes (lifecycle, churn) and the runner's teardown go through here.
 */

/** Where each phase may go. A move not listed is a harness bug, thrown as such rather than written. */
const NEXT: { readonly [P in Phase]: readonly Phase[] } = {
  declared: ['started', 'listening', 'launched', 'reached'],
  started: ['supervised', 'stopped', 'killed'],
  // → stopped: the teardown of a node whose supervision would not end.
  supervised: ['supervised', 'started', 'recovering', 'stopped'],
  recovering: ['supervised', 'killed'],
  listening: ['stopped', 'killed'],
  launched: ['stopped', 'killed'],
  reached: ['started', 'listening', 'launched', 'reached'],
  stopped: ['started', 'listening', 'launched', 'reached'],
  killed: ['started', 'listening', 'launched', 'reached']
}

/** The node's state now; a function, so that a read after an await is not narrowed by a read before it. */
function stateOf (node: RunNode): NodeState {
  return node.state
}

function enter (node: RunNode, next: NodeState): void {
  if (!NEXT[node.state.phase].includes(next.phase)) throw new Error(`node "${node.name}" cannot go from ${node.state.phase} to ${next.phase} (a harness bug)`)
  ;(node as { state: NodeState }).state = next
}

/** Listens to a started node's events, into the run's evidence. */
function listen (ctx: RunContext, node: RunNode, started: StartedNode): Running {
  if (started.output != null) node.outputs.push(() => started.output?.() ?? '')
  return { node: started, unsubscribe: started.handle.subscribe(ev => { ctx.evidence.record(ev) }) }
}

/** The addresses `dialer` uses for its bootstraps: its own links' proxies when links are proxied. */
export function bootstrapAddrs (ctx: RunContext, dialer: string, refs: string[]): string[] {
  return refs.map(r => {
    const node = ctx.roster.node(r)
    const address = (node.state.phase === 'listening' ? node.state.blackhole.multiaddr : undefined) ?? proxiedAddr(ctx, dialer, r) ?? node.address
    if (address == null) throw new Error(`bootstrap "${r}" has no address yet: start it (a blackhole must be started before peers connect to it)`)
    return address
  })
}

export async function startNode (ctx: RunContext, node: RunNode): Promise<void> {
  const from = node.state
  if (isUp(from)) throw new Error(`node "${node.name}" is already running`)
  if (from.phase === 'recovering') throw new Error(`node "${node.name}" was killed and its supervisor is bringing it back: restart it to start it afresh`)
  if (node.spec.role === 'blackhole') {
    const blackhole = await ctx.backend.startBlackhole(node.name, ctx.signal)
    node.address = blackhole.multiaddr
    enter(node, { phase: 'listening', blackhole })
    return
  }
  if (node.spec.role === 'external') {
    const external = await startExternal(ctx, node)
    enter(node, external != null ? { phase: 'launched', external } : { phase: 'reached' })
    return
  }
  if (node.config == null) throw new Error(`node "${node.name}" has no configuration`)
  const config = node.config.role === 'peer' ? { ...node.config, bootstrapAddrs: bootstrapAddrs(ctx, node.name, node.bootstrapRefs) } : node.config
  const implementation = node.spec.role === 'peer' ? node.spec.implementation ?? 'js' : 'js'
  if (implementation !== 'js' && ctx.backend.startReferencePeer == null) {
    throw new Error(`peer "${node.name}" is a ${implementation} peer, a process on this machine: run the scenario with --mode ${REFERENCE_PEER_MODES.join(' or ')}`)
  }
  const started = implementation !== 'js'
    ? await ctx.backend.startReferencePeer!(implementation, config, ctx.signal)
    : await ctx.backend.startNode(config, ctx.signal)
  node.peerId = started.peerId
  enter(node, { phase: 'started', running: listen(ctx, node, started) })
  if (node.spec.role === 'bootstrap' && node.spec.supervise === true) await supervise(ctx, node, started)
}

async function supervise (ctx: RunContext, node: RunNode, started: StartedNode): Promise<void> {
  if (!canSupervise(ctx.backend)) throw new Error(`bootstrap "${node.name}" asks for supervision, which needs process or docker mode`)
  const emit = (body: NodeEventBody, at: number): void => { ctx.evidence.emit(node.name, body, at) }
  const supervision = await ctx.backend.supervise(started, {
    // The replacement process numbers its events from 0 again: listen to it afresh.
    onRestarted: fresh => {
      const now = stateOf(node)
      if (now.phase !== 'supervised' && now.phase !== 'recovering') throw new Error(`node "${node.name}" was restarted by a supervisor it no longer has (${now.phase})`)
      if (now.phase === 'supervised') now.running.unsubscribe()
      enter(node, { phase: 'supervised', running: listen(ctx, node, fresh), supervision: now.supervision })
    },
    onEvent: ev => {
      switch (ev.type) {
        case 'check': emit({ type: 'supervisor:check', ok: ev.ok, failed: ev.checks.filter(c => !c.ok).map(c => `${c.name}: ${c.detail}`), latencyMs: ev.latencyMs }, ev.at); break
        case 'restart': emit({ type: 'supervisor:restart', reason: ev.reason, restartsInWindow: ev.restartsInWindow, ok: ev.ok, durationMs: ev.durationMs, ...(ev.error != null ? { error: ev.error } : {}) }, ev.at); break
        case 'alert': emit({ type: 'supervisor:alert', restartsInWindow: ev.restartsInWindow, windowMs: ev.windowMs, message: ev.message }, ev.at); break
        case 'recovered': emit({ type: 'supervisor:recovered', downtimeMs: ev.downtimeMs, automatic: ev.recovery.automatic, restarts: ev.recovery.restarts, reason: ev.recovery.reason }, ev.at); break
      }
    }
  })
  const now = stateOf(node)
  if (now.phase !== 'started') throw new Error(`node "${node.name}" left the started phase (${now.phase}) while its supervision began`)
  enter(node, { phase: 'supervised', running: now.running, supervision })
}

/** A deliberate stop is not a crash: supervision ends first, so the supervisor does not bring the node back. */
export async function unsupervise (ctx: RunContext, node: RunNode): Promise<void> {
  const from = node.state
  if (from.phase !== 'supervised' && from.phase !== 'recovering') return
  const { supervisor } = from.supervision
  ctx.evidence.recoveries.push(...supervisor.recoveries().map(r => ({ node: node.name, failedAt: r.failedAt, detectedAt: r.detectedAt, recoveredAt: r.recoveredAt, automatic: r.automatic })))
  // An incident still open (the supervisor gave up after the alert) is a failure that needs an operator.
  const open = supervisor.history().incident
  if (open != null) ctx.evidence.recoveries.push({ node: node.name, failedAt: open.failedAt, detectedAt: open.detectedAt, recoveredAt: null, automatic: false })
  // Waits out a restart in flight, whose replacement is then the node running.
  await from.supervision.stop()
  const now = stateOf(node)
  enter(node, now.phase === 'supervised' ? { phase: 'started', running: now.running } : { phase: 'killed' })
}

export async function stopNode (ctx: RunContext, node: RunNode, how: 'stop' | 'kill'): Promise<void> {
  const from = node.state
  switch (from.phase) {
    case 'listening':
      enter(node, { phase: how === 'kill' ? 'killed' : 'stopped' })
      await from.blackhole.close()
      return
    case 'launched':
      enter(node, { phase: how === 'kill' ? 'killed' : 'stopped' })
      await (how === 'kill' ? from.external.kill() : from.external.stop())
      return
    case 'started':
    case 'supervised':
      break
    default:
      if (node.spec.role === 'external' && node.spec.command == null && node.spec.image == null && node.spec.reference == null) {
        throw new Error(`external node "${node.name}" was not started by chiral-sim (it has no command, image or reference), so it cannot ${how} it`)
      }
      throw new Error(`${node.spec.role === 'external' ? 'external ' : ''}node "${node.name}" is not running`)
  }
  // A kill is the crash the supervisor exists for; a stop (or the stop half of a restart) is deliberate.
  if (how === 'stop') await unsupervise(ctx, node)
  const now = stateOf(node)
  if (now.phase !== 'started' && now.phase !== 'supervised') throw new Error(`node "${node.name}" is not running`)
  const { running } = now
  const since = Date.now()
  enter(node, how === 'kill' ? (now.phase === 'supervised' ? { phase: 'recovering', supervision: now.supervision } : { phase: 'killed' }) : { phase: 'stopped' })
  if (how === 'kill') await running.node.kill()
  else await running.node.stop()
  // Events emitted while stopping are delivered before we stop listening.
  running.unsubscribe()
  recordDown(ctx, node, since)
}

/**
 * A node that went down without a word of its own (a killed process or container) is recorded as stopped by the
 * runner, as external nodes are (external.ts): the record must know who was gone, or a dial to it reads as a
 * discovery failure (reports/departures.ts).
 */
function recordDown (ctx: RunContext, node: RunNode, since: number): void {
  const events = ctx.evidence.events
  for (let i = events.length - 1; i >= 0 && events[i]!.time >= since; i--) {
    if (events[i]!.node === node.name && events[i]!.type === 'node:stopped') return
  }
  ctx.evidence.emit(node.name, { type: 'node:stopped' })
}

/** A stop then a start; a node that is not up (never started, stopped, killed, or down under its supervisor) just starts. */
export async function restartNode (ctx: RunContext, node: RunNode): Promise<void> {
  if (isUp(node.state)) await stopNode(ctx, node, 'stop')
  else await unsupervise(ctx, node)
  await startNode(ctx, node)
}

/**
 * The run's end: supervision first (a supervisor watching a node being stopped would bring it back), then
 * whatever of each node is up. Every node is tried. The backend's own disposal, after this, is the safety net for
 * what fails here.
 */
export async function tearDown (ctx: RunContext): Promise<void> {
  const nodes = [...ctx.roster.nodes.values()]
  await Promise.allSettled(nodes.map(async n => { await unsupervise(ctx, n) }))
  await Promise.allSettled(nodes.map(async n => {
    const from = n.state
    switch (from.phase) {
      case 'started':
      case 'supervised':
        from.running.unsubscribe()
        enter(n, { phase: 'stopped' })
        await from.running.node.stop()
        break
      case 'listening':
      case 'launched':
        await stopNode(ctx, n, 'stop')
        break
    }
  }))
}
