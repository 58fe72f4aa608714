import type { HarnessHealth } from '../../../scenarios/record.ts'
import type { Step } from '../../../scenarios/schema.ts'
import type { RunContext } from '../context.ts'

export type StepAction = Step['action']
export type StepOf<A extends StepAction> = Extract<Step, { action: A }>

/** Runs one step; a sweep runs its nested steps through it. Returns the nodes or links the step acted on. */
export type ExecuteStep = (ctx: RunContext, step: Step) => Promise<string[]>

/**
 * The handler of one step action. `refs` are the step's nodes, groups expanded. A handler records its checks with
 * `ctx.evidence.expect` and throws only when the step itself broke (not when a check failed). It returns what it acted on
 * when that is not `refs` (a fault's links), or nothing.
 */
export type StepHandler<A extends StepAction> = (ctx: RunContext, step: StepOf<A>, refs: string[], execute: ExecuteStep) => Promise<string[] | void>

/** A step family's handlers, one per action it owns. */
export type StepHandlers<A extends StepAction> = { [K in A]: StepHandler<K> }

export async function forEach (names: string[], fn: (name: string) => Promise<void>): Promise<void> {
  // Concurrent, as when several users act at once; every failure is reported, not only the first.
  const results = await Promise.allSettled(names.map(fn))
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed.length > 0) throw new Error(failed.map(f => (f.reason as Error).message).join('; '))
}

/** In memory and tcp mode every node runs on the harness's event loop, so the harness's lag is the nodes' lag too. */
export const inProcess = (ctx: RunContext): boolean => ctx.backend.mode === 'memory' || ctx.backend.mode === 'tcp'

/** The harness's lag while something ran: its longest stall, when the nodes share the harness's loop. */
export function inProcessLag (ctx: RunContext, h: HarnessHealth): number {
  return inProcess(ctx) ? Math.round(h.eventLoopLagMs.max) : 0
}
