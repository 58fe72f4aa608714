import { restartNode, startNode, stopNode } from '../lifecycle.ts'
import { forEach, type StepHandlers } from './handler.ts'

/** start, stop, kill, restart: the node lifecycle as steps (sim/runner/lifecycle.ts does the work). */
export const lifecycleSteps: StepHandlers<'start' | 'stop' | 'kill' | 'restart'> = {
  start: async (ctx, _step, refs) => {
    // Bootstraps and blackholes first: a peer's configuration names their addresses.
    const first = refs.filter(n => ctx.roster.node(n).spec.role !== 'peer')
    for (const n of first) await startNode(ctx, ctx.roster.node(n))
    await forEach(refs.filter(n => !first.includes(n)), async n => { await startNode(ctx, ctx.roster.node(n)) })
  },
  stop: async (ctx, _step, refs) => { await forEach(refs, async n => { await stopNode(ctx, ctx.roster.node(n), 'stop') }) },
  kill: async (ctx, _step, refs) => { await forEach(refs, async n => { await stopNode(ctx, ctx.roster.node(n), 'kill') }) },
  restart: async (ctx, _step, refs) => {
    // Restarting a node that was killed or stopped is just starting it again, at the same address.
    await forEach(refs, async n => { await restartNode(ctx, ctx.roster.node(n)) })
  }
}
