import type { NodeEventBody } from '../../nodes/events.ts'
import { canSupervise } from '../backends/supervise.ts'
import type { StartedNode } from '../backends/backend.ts'
import type { RunContext } from './context.ts'
import type { RunNode } from './roster.ts'
import { startExternal, stopExternal } from './external.ts'
import { proxiedAddr } from './link-wiring.ts'

/**
 * A node's lifecycle in a run: start (a chiral node, a blackhole or an external node), supervision of a bootstrap
 * that asks for it, stop and kill. The steps that start and stop nodes (lifecycle, churn) go through here.
 */

/** The addresses `dialer` uses for its bootstraps: its own links' proxies when links are proxied. */
export function bootstrapAddrs (ctx: RunContext, dialer: string, refs: string[]): string[] {
  return refs.map(r => {
    const node = ctx.roster.node(r)
    const address = node.blackhole?.multiaddr ?? proxiedAddr(ctx, dialer, r) ?? node.address
    if (address == null) throw new Error(`bootstrap "${r}" has no address yet: start it (a blackhole must be started before peers connect to it)`)
    return address
  })
}

export async function startNode (ctx: RunContext, node: RunNode): Promise<void> {
  if (node.running != null || node.blackhole != null) throw new Error(`node "${node.name}" is already running`)
  if (node.spec.role === 'blackhole') {
    node.blackhole = await ctx.backend.startBlackhole(node.name, ctx.signal)
    node.address = node.blackhole.multiaddr
    return
  }
  if (node.external != null) throw new Error(`node "${node.name}" is already running`)
  if (node.spec.role === 'external') {
    await startExternal(ctx, node)
    return
  }
  if (node.config == null) throw new Error(`node "${node.name}" has no configuration`)
  const config = node.config.role === 'peer' ? { ...node.config, bootstrapAddrs: bootstrapAddrs(ctx, node.name, node.bootstrapRefs) } : node.config
  node.running = await ctx.backend.startNode(config, ctx.signal)
  node.peerId = node.running.peerId
  keepOutput(node, node.running)
  node.unsubscribe = node.running.handle.subscribe(ev => { ctx.evidence.record(ev) })
  if (node.spec.role === 'bootstrap' && node.spec.supervise === true) await supervise(ctx, node)
}

function keepOutput (node: RunNode, started: StartedNode): void {
  if (started.output != null) node.outputs.push(() => started.output?.() ?? '')
}

async function supervise (ctx: RunContext, node: RunNode): Promise<void> {
  if (!canSupervise(ctx.backend)) throw new Error(`bootstrap "${node.name}" asks for supervision, which needs process or docker mode`)
  const emit = (body: NodeEventBody, at: number): void => { ctx.evidence.emit(node.name, body, at) }
  const supervised = await ctx.backend.supervise(node.running!, {
    // The replacement process numbers its events from 0 again: listen to it afresh.
    onRestarted: fresh => {
      node.unsubscribe?.()
      node.running = fresh
      keepOutput(node, fresh)
      node.unsubscribe = fresh.handle.subscribe(ev => { ctx.evidence.record(ev) })
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
  ctx.roster.supervised.set(node.name, supervised)
}

/** A deliberate stop is not a crash: supervision ends first, so the supervisor does not bring the node back. */
export async function unsupervise (ctx: RunContext, node: RunNode): Promise<void> {
  const supervised = ctx.roster.supervised.get(node.name)
  if (supervised == null) return
  ctx.roster.supervised.delete(node.name)
  ctx.evidence.recoveries.push(...supervised.supervisor.recoveries().map(r => ({ node: node.name, failedAt: r.failedAt, detectedAt: r.detectedAt, recoveredAt: r.recoveredAt, automatic: r.automatic })))
  // An incident still open (the supervisor gave up after the alert) is a failure that needs an operator.
  const open = supervised.supervisor.history().incident
  if (open != null) ctx.evidence.recoveries.push({ node: node.name, failedAt: open.failedAt, detectedAt: open.detectedAt, recoveredAt: null, automatic: false })
  await supervised.stop()
}

export async function stopNode (ctx: RunContext, node: RunNode, how: 'stop' | 'kill'): Promise<void> {
  if (node.blackhole != null) {
    await node.blackhole.close()
    node.blackhole = undefined
    return
  }
  if (node.spec.role === 'external') {
    await stopExternal(node, how)
    return
  }
  if (node.running == null) throw new Error(`node "${node.name}" is not running`)
  // A kill is the crash the supervisor exists for; a stop (or the stop half of a restart) is deliberate.
  if (how === 'stop') await unsupervise(ctx, node)
  const running = node.running
  node.running = undefined
  if (how === 'kill') await running.kill()
  else await running.stop()
  // Events emitted while stopping are delivered before we stop listening.
  node.unsubscribe?.()
  node.unsubscribe = undefined
}
