import type { ConnectResult } from '../../../nodes/schemas.ts'
import type { RunContext } from '../context.ts'
import { startHarnessHealth } from '../harness-health.ts'
import { bootstrapAddrs } from '../lifecycle.ts'
import { forEach, inProcessLag, type StepHandlers, type StepOf } from './handler.ts'

/** connect, monitor, health: the plan's Solutions #1 and #2 as steps, with their expectations. */
export const connectSteps: StepHandlers<'connect' | 'monitor' | 'health'> = {
  connect: async (ctx, step, refs) => { await forEach(refs, async n => { await connect(ctx, step, n) }) },
  monitor: async (ctx, step, refs) => {
    await forEach(refs, async n => {
      if (step.enabled) await ctx.roster.handle(n).call('startHealthMonitoring', {}, { signal: ctx.signal })
      else await ctx.roster.handle(n).call('stopHealthMonitoring', {}, { signal: ctx.signal })
    })
  },
  health: async (ctx, step, refs) => { await forEach(refs, async n => { await health(ctx, step, n) }) }
}

/**
 * A measured duration against the plan's (scaled) figure. `lagMs` is how late this process's event loop ran while
 * the duration was measured: a timer cannot fire before its loop runs, so a starved harness may make a duration
 * late by that much, never early. It widens only the upper bound, and the assertion states it.
 */
function durationCheck (ctx: RunContext, id: string, what: string, ms: number, e: { min?: number | undefined, max?: number | undefined, approx?: number | undefined, toleranceMs: number }, planRef?: string, lagMs = 0): void {
  const lag = lagMs > 0 ? ` + ${lagMs} ms event-loop lag measured meanwhile` : ''
  if (e.approx != null) {
    const target = ctx.scaled(e.approx)
    ctx.evidence.expect({ id: `${id}-approx`, description: `${what} ≈ ${target} ms (plan ${e.approx} ms × ${ctx.timeScale}) ± ${e.toleranceMs} ms${lag}`, expected: `${target - e.toleranceMs}–${target + e.toleranceMs + lagMs} ms`, actual: `${ms} ms`, passed: ms >= target - e.toleranceMs && ms <= target + e.toleranceMs + lagMs, planRef })
  }
  if (e.min != null) ctx.evidence.expect({ id: `${id}-min`, description: `${what} at least ${ctx.scaled(e.min)} ms`, expected: `≥ ${ctx.scaled(e.min)} ms`, actual: `${ms} ms`, passed: ms >= ctx.scaled(e.min) - e.toleranceMs, planRef })
  if (e.max != null) ctx.evidence.expect({ id: `${id}-max`, description: `${what} at most ${ctx.scaled(e.max)} ms${lag}`, expected: `≤ ${ctx.scaled(e.max) + lagMs} ms`, actual: `${ms} ms`, passed: ms <= ctx.scaled(e.max) + e.toleranceMs + lagMs, planRef })
}

async function connect (ctx: RunContext, step: StepOf<'connect'>, name: string): Promise<void> {
  let lagMs = 0
  const refs = step.bootstraps ?? ctx.roster.node(name).bootstrapRefs
  const meter = startHarnessHealth()
  const result: ConnectResult = await ctx.roster.handle(name).call('connectWithTimeout', {
    bootstrapAddrs: bootstrapAddrs(ctx, name, refs),
    ...(step.timeoutMs != null ? { timeoutMs: step.timeoutMs } : {})
  }, { signal: ctx.signal }).finally(() => { lagMs = inProcessLag(ctx, meter.stop()) })
  const e = step.expect
  if (e == null) return
  const id = `${ctx.evidence.currentStep}-connect-${name}`
  const p = step.planRef
  const total = result.attempts.reduce((sum, a) => sum + a.durationMs, 0)
  if (e.success != null) ctx.evidence.expect({ id: `${id}-success`, description: `${name} connect ${e.success ? 'succeeds' : 'fails'}`, expected: e.success, actual: result.success ? 'success' : `failed: ${result.error?.category ?? '?'}`, passed: result.success === e.success, planRef: p })
  if (e.category != null) ctx.evidence.expect({ id: `${id}-category`, description: `${name}'s failure is categorized as "${e.category}"`, expected: e.category, actual: result.error != null ? `${result.error.category} (${result.error.detail})` : result.success ? 'success' : 'none', passed: result.error?.category === e.category, planRef: p })
  if (e.message != null) ctx.evidence.expect({ id: `${id}-message`, description: `${name} shows the plan's message`, expected: e.message, actual: result.error?.message ?? '', passed: result.error?.message === e.message, planRef: p })
  if (e.suggestedAction != null) ctx.evidence.expect({ id: `${id}-action`, description: `${name} shows the plan's suggested action`, expected: e.suggestedAction, actual: result.error?.suggestedAction ?? '', passed: result.error?.suggestedAction === e.suggestedAction, planRef: p })
  if (e.bootstrap != null) {
    const want = ctx.roster.node(e.bootstrap).peerId
    const got = result.bootstrap == null ? 'none' : ctx.roster.nameOfPeer(result.bootstrap.split('/p2p/')[1] ?? '')
    ctx.evidence.expect({ id: `${id}-bootstrap`, description: `${name} ends on bootstrap ${e.bootstrap}`, expected: e.bootstrap, actual: got, passed: want != null && result.bootstrap?.endsWith(want) === true, planRef: p })
  }
  if (e.attempts != null) ctx.evidence.expect({ id: `${id}-attempts`, description: `${name} makes ${e.attempts} attempt(s)`, expected: e.attempts, actual: result.attempts.length, passed: result.attempts.length === e.attempts, planRef: p })
  if (e.attemptTimeoutsMs != null) {
    const want = e.attemptTimeoutsMs.map(ms => ctx.scaled(ms))
    const got = result.attempts.map(a => a.timeoutMs)
    ctx.evidence.expect({ id: `${id}-timeouts`, description: `${name}'s attempts use the plan's timeouts`, expected: want, actual: got, passed: JSON.stringify(want) === JSON.stringify(got), planRef: p })
  }
  if (e.durationMs != null) durationCheck(ctx, `${id}-duration`, `${name}'s connection outcome`, total, e.durationMs, p, lagMs)
}

async function health (ctx: RunContext, step: StepOf<'health'>, name: string): Promise<void> {
  const h = await ctx.roster.handle(name).call('checkBootstrapHealth', {}, { signal: ctx.signal })
  const state = await ctx.roster.handle(name).call('getHealth', {}, { signal: ctx.signal })
  const id = `${ctx.evidence.currentStep}-health-${name}`
  if (step.expect?.isReachable != null) ctx.evidence.expect({ id: `${id}-reachable`, description: `${name} finds its bootstrap ${step.expect.isReachable ? 'reachable' : 'unreachable'}`, expected: step.expect.isReachable, actual: h.isReachable ? `reachable (${h.latencyMs} ms)` : `unreachable: ${h.errorMessage}`, passed: h.isReachable === step.expect.isReachable, planRef: step.planRef })
  if (step.expect?.status != null) ctx.evidence.expect({ id: `${id}-status`, description: `${name}'s health indicator is ${step.expect.status}`, expected: step.expect.status, actual: state.status, passed: state.status === step.expect.status, planRef: step.planRef })
}
