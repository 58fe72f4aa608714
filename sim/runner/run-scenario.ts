import type { Scenario } from '../../scenarios/schema.ts'
import type { Backend } from '../backends/backend.ts'
import type { Mode, ScenarioRecord } from '../record.ts'
import { buildNodes, RunContext, ScenarioAbort } from './context.ts'
import { executeStep } from './steps.ts'
import { describeError } from '../../nodes/util.ts'

export interface RunScenarioOptions {
  mode: Mode
  seed: number
  /** Overrides the scenario's own timeScale. */
  timeScale?: number | undefined
  signal?: AbortSignal | undefined
  createBackend: (mode: Mode) => Promise<Backend>
  file?: string | undefined
  onStep?: ((scenario: string, label: string) => void) | undefined
}

export function stepLabel (step: Scenario['steps'][number]): string {
  if (step.label != null) return step.label
  const target = 'nodes' in step ? step.nodes.join(', ') : 'node' in step ? step.node : ''
  switch (step.action) {
    case 'wait': return `wait until ${JSON.stringify(step.until)}`
    case 'pause': return `pause ${step.ms} ms (plan)`
    case 'assert': return `assert ${Object.keys(step.check)[0]}`
    case 'share': return `${step.node} shares ${step.file.name} as ${step.as}`
    case 'search': return `${step.node} searches for ${step.file}`
    case 'download': return `${step.node} downloads ${step.file}`
    case 'matrix': return 'who-sees-whom matrix'
    default: return `${step.action} ${target}`
  }
}

/**
 * Runs one scenario to a ScenarioRecord. Everything it starts is torn down through one AsyncDisposableStack,
 * whether the scenario passes, fails, throws, exceeds its deadline or is interrupted.
 */
export async function runScenario (scenario: Scenario, opts: RunScenarioOptions): Promise<ScenarioRecord> {
  const startedAt = Date.now()
  const timeScale = opts.timeScale ?? scenario.timeScale
  const base = {
    name: scenario.name,
    title: scenario.title,
    description: scenario.description,
    ...(scenario.planTest != null ? { planTest: scenario.planTest } : {}),
    tags: scenario.tags,
    ...(opts.file != null ? { file: opts.file } : {}),
    mode: opts.mode,
    seed: opts.seed,
    timeScale
  }
  if (scenario.modes != null && !scenario.modes.includes(opts.mode)) {
    return {
      ...base, status: 'skipped', reason: scenario.modesReason ?? `runs only in ${scenario.modes.join(', ')} mode`,
      startedAt, endedAt: startedAt, durationMs: 0, nodes: [], steps: [], assertions: [], events: [], faults: [], recoveries: []
    }
  }
  const deadline = AbortSignal.timeout(scenario.timeoutMs)
  const signal = AbortSignal.any([deadline, ...(opts.signal != null ? [opts.signal] : [])])
  let status: ScenarioRecord['status'] = 'passed'
  let reason: string | undefined
  let ctx: RunContext | undefined
  {
    await using stack = new AsyncDisposableStack()
    try {
      const backend = stack.use(await opts.createBackend(opts.mode))
      ctx = new RunContext({ scenario, backend, seed: opts.seed, timeScale, signal })
      const run = ctx
      await buildNodes(run)
      // Stop nodes before the backend goes: the backend's own disposal is the safety net, not the plan.
      stack.defer(async () => {
        await Promise.allSettled([...run.nodes.values()].map(async n => {
          n.unsubscribe?.()
          await n.running?.stop()
          await n.blackhole?.close()
        }))
      })
      for (const [index, step] of scenario.steps.entries()) {
        signal.throwIfAborted()
        run.currentStep = index
        const label = stepLabel(step)
        opts.onStep?.(scenario.name, label)
        const stepStart = Date.now()
        let targets: string[] = []
        try {
          targets = await executeStep(run, step)
          run.steps.push({ index, kind: step.action, label, startedAt: stepStart, endedAt: Date.now(), ok: true, targets })
        } catch (err) {
          run.steps.push({ index, kind: step.action, label, startedAt: stepStart, endedAt: Date.now(), ok: false, error: describeError(err), targets })
          throw err
        }
      }
    } catch (err) {
      if (err instanceof ScenarioAbort) {
        status = 'failed'
        reason = err.message
      } else if (deadline.aborted) {
        status = 'error'
        reason = `scenario exceeded its deadline of ${scenario.timeoutMs} ms`
      } else if (opts.signal?.aborted === true) {
        status = 'error'
        reason = 'interrupted'
      } else {
        status = 'error'
        reason = describeError(err)
      }
    }
  }
  const endedAt = Date.now()
  const assertions = ctx?.assertions ?? []
  if (status === 'passed') {
    if (assertions.length === 0) {
      status = 'error'
      reason = 'the scenario asserts nothing: add an expect block, a wait, an assert or a matrix expectation'
    } else if (assertions.some(a => !a.passed)) {
      status = 'failed'
    }
  }
  if (status === 'failed' && reason == null) {
    const first = assertions.find(a => !a.passed)
    reason = first == null ? undefined : `${first.description}: expected ${first.expected}, got ${first.actual}`
  }
  return {
    ...base,
    status,
    ...(reason != null ? { reason } : {}),
    startedAt,
    endedAt,
    durationMs: endedAt - startedAt,
    nodes: [...(ctx?.nodes.values() ?? [])].map(n => ({
      name: n.name,
      role: n.spec.role === 'blackhole' || n.spec.role === 'external' ? 'external' as const : n.spec.role,
      ...(n.peerId != null ? { peerId: n.peerId } : {}),
      multiaddrs: n.address != null ? [n.address] : []
    })),
    steps: ctx?.steps ?? [],
    assertions,
    events: [...(ctx?.events ?? [])].sort((a, b) => a.time - b.time),
    ...(ctx?.matrix != null ? { matrix: ctx.matrix } : {}),
    faults: [],
    recoveries: []
  }
}
