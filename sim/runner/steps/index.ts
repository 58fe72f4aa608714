/**
 * @packageDocumentation
 *
 * The steps of a scenario, one file per family, as js-libp2p's kad-dht maps each RPC message type to a handler:
 * `lifecycle.ts` (start, stop, kill, restart), `connect.ts` (connect, monitor, health), `discovery.ts` (verify,
 * waitBidirectional, refresh, matrix), `files.ts` (share, search, download), `conditions.ts` (wait, pause, assert),
 * `faults.ts` (fault, heal, sweep), `churn.ts`. Adding a step is its schema in scenarios/schema.ts, a handler in a
 * family file, and (for a new family) a line in `HANDLERS`; the compiler names an action without a handler.
 *
 * @example
 * ```ts
 * // a family file
 * export const pingSteps: StepHandlers<'ping'> = {
 *   ping: async (ctx, step, refs) => { await forEach(refs, async n => { await ctx.roster.handle(n).call('checkBootstrapHealth', {}, { signal: ctx.signal }) }) }
 * }
 * // here
 * const HANDLERS: StepHandlers<StepAction> = { ...lifecycleSteps, ..., ...pingSteps }
 * ```
 */
import { resolveRefs, type Step } from '../../../scenarios/schema.ts'
import type { RunContext } from '../context.ts'
import { churnSteps } from './churn.ts'
import { conditionSteps } from './conditions.ts'
import { connectSteps } from './connect.ts'
import { discoverySteps } from './discovery.ts'
import { faultSteps } from './faults.ts'
import { fileSteps } from './files.ts'
import type { StepAction, StepHandler, StepHandlers } from './handler.ts'
import { lifecycleSteps } from './lifecycle.ts'

const HANDLERS: StepHandlers<StepAction> = {
  ...lifecycleSteps,
  ...connectSteps,
  ...discoverySteps,
  ...fileSteps,
  ...conditionSteps,
  ...faultSteps,
  ...churnSteps
}

/** Executes one step; assertions go into the context, and only a broken step (not a failed check) throws. */
export async function executeStep (ctx: RunContext, step: Step): Promise<string[]> {
  const refs = 'nodes' in step ? resolveRefs(ctx.scenario.nodes, step.nodes) : 'node' in step ? [step.node] : []
  // The registry's type pairs each action with its handler; indexing it by a union loses that pairing.
  const handler = HANDLERS[step.action] as StepHandler<StepAction> as (ctx: RunContext, step: Step, refs: string[], execute: typeof executeStep) => Promise<string[] | void>
  return (await handler(ctx, step, refs, executeStep)) ?? refs
}
