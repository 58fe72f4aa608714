import path from 'node:path'
import type { Scenario } from '../../scenarios/schema.ts'
import type { Backend } from '../backends/backend.ts'
import type { Mode, ScenarioRecord } from '../../scenarios/record.ts'
import { buildNodes, RunContext, ScenarioAbort } from './context.ts'
import { executeStep } from './steps/index.ts'
import { tearDown } from './lifecycle.ts'
import { describeError } from '../../nodes/util.ts'
import { startToxiproxy } from '../faults/toxiproxy-server.ts'
import { LinkProxies, newRunId } from '../faults/link-proxies.ts'
import { bypassVerdict, connectionsOutsideProxies, createLinks, usesFaults } from './link-wiring.ts'
import { EXTERNAL_MODES } from './external.ts'
import { nodeOutput } from '../backends/output-tail.ts'
import type { RunNode } from './roster.ts'
import { scenarioDeadline } from './deadline.ts'
import { CommandError } from '../../nodes/commands.ts'
import { REFERENCE_PEER_MODES, type ForeignPeerImplementation } from '../../scenarios/reference-peer.ts'
import { referenceBinaryMissing } from '../interop/binaries.ts'
import { startHarnessHealth } from './harness-health.ts'

/**
 * Modes whose nodes talk over TCP that a Toxiproxy can sit in: on this machine (containers reach it at their
 * gateway), or among the nodes (swarm: a service on the run's overlay network).
 */
export const FAULT_MODES: Mode[] = ['tcp', 'shards', 'process', 'docker', 'swarm']
/** Modes whose bootstraps are real processes or containers that can crash and be restarted. */
export const SUPERVISED_MODES: Mode[] = ['process', 'docker', 'swarm']

/** "tcp, process or docker" */
export function modeList (modes: Mode[]): string {
  return modes.length <= 1 ? modes.join('') : `${modes.slice(0, -1).join(', ')} or ${modes.at(-1)!}`
}

type ForeignPeer = Extract<Scenario['nodes'][number], { role: 'peer' }> & { implementation: ForeignPeerImplementation }
const foreignPeers = (scenario: Scenario): ForeignPeer[] =>
  scenario.nodes.filter((n): n is ForeignPeer => n.role === 'peer' && n.implementation != null && n.implementation !== 'js')

/** Peers of another implementation are processes on this machine: why this mode cannot run them, if it cannot. */
function referencePeersNotHere (scenario: Scenario, mode: Mode): string | undefined {
  const foreign = foreignPeers(scenario)
  if (foreign.length === 0 || (REFERENCE_PEER_MODES as readonly Mode[]).includes(mode)) return undefined
  return `has peers of another implementation (${foreign.map(n => `${n.name}: ${n.implementation}`).join(', ')}), processes on this machine: run it with --mode ${modeList([...REFERENCE_PEER_MODES])}`
}

function referencePeerBinaryMissing (scenario: Scenario): string | undefined {
  for (const n of foreignPeers(scenario)) {
    const missing = referenceBinaryMissing(n.implementation)
    if (missing != null) return `peer "${n.name}" is a ${n.implementation} peer and ${missing}`
  }
  return undefined
}

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
    case 'fault': return `${step.down === true ? 'down' : `${step.toxic?.type ?? 'toxic'}`} on ${describeTarget(step.target)}`
    case 'heal': return `heal ${step.faults?.join(', ') ?? 'all faults'}`
    case 'sweep': return `sweep ${step.parameter} over ${step.values.join(', ')} on ${describeTarget(step.target)}`
    default: return `${step.action} ${target}`
  }
}

function describeTarget (t: Extract<Scenario['steps'][number], { action: 'fault' }>['target']): string {
  if (t.links != null) return t.links.join(', ')
  if (t.between != null) return `between ${t.between[0].join(',')} and ${t.between[1].join(',')}`
  if (t.around != null) return `every link of ${t.around.join(',')}`
  return `${t.from != null ? `links from ${t.from.join(',')}` : 'links'}${t.to != null ? ` to ${t.to.join(',')}` : ''}`
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
  const faults = usesFaults(scenario)
  const supervised = scenario.nodes.some(n => n.role === 'bootstrap' && n.supervise === true)
  const external = scenario.nodes.some(n => n.role === 'external')
  const image = scenario.nodes.some(n => n.role === 'external' && n.image != null)
  const notHere = scenario.modes != null && !scenario.modes.includes(opts.mode)
    ? scenario.modesReason ?? `runs only in ${scenario.modes.join(', ')} mode`
    : faults && !FAULT_MODES.includes(opts.mode)
      ? `injects faults through Toxiproxy proxies on TCP links: run it with --mode ${modeList(FAULT_MODES)}`
      : supervised && !SUPERVISED_MODES.includes(opts.mode)
        ? `needs the bootstrap supervisor, which restarts a real process or container: run it with --mode ${modeList(SUPERVISED_MODES)}`
        : image && opts.mode !== 'docker'
          ? 'runs an external bootstrap image as a container of the run: run it with --mode docker'
          : external && !EXTERNAL_MODES.includes(opts.mode)
            ? `starts an external bootstrap as a process on this machine that peers reach over TCP: run it with --mode ${modeList(EXTERNAL_MODES)}`
            : referencePeersNotHere(scenario, opts.mode)
  const peerBinaryMissing = notHere == null ? referencePeerBinaryMissing(scenario) : undefined
  if (peerBinaryMissing != null && process.env.CI === 'true') {
    // On CI a missing reference binary is a broken set-up, never a quiet skip.
    return {
      ...base, status: 'error', reason: `${peerBinaryMissing} (CI=true: a missing reference node is an error, not a skip)`,
      startedAt, endedAt: startedAt, durationMs: 0, nodes: [], steps: [], assertions: [], events: [], faults: [], recoveries: []
    }
  }
  if (notHere != null || peerBinaryMissing != null) {
    return {
      ...base, status: 'skipped', reason: notHere ?? peerBinaryMissing,
      startedAt, endedAt: startedAt, durationMs: 0, nodes: [], steps: [], assertions: [], events: [], faults: [], recoveries: []
    }
  }
  const limit = scenarioDeadline(scenario, timeScale)
  const deadline = AbortSignal.timeout(limit.ms)
  const health = startHarnessHealth()
  const signal = AbortSignal.any([deadline, ...(opts.signal != null ? [opts.signal] : [])])
  let status: ScenarioRecord['status'] = 'passed'
  let reason: string | undefined
  let ctx: RunContext | undefined
  let invalid: string | undefined
  let teardownError: unknown
  {
    const stack = new AsyncDisposableStack()
    let outside = new Map<string, Array<{ from: string, to: string, remoteAddr: string }>>()
    try {
      const backend = stack.use(await opts.createBackend(opts.mode))
      ctx = new RunContext({ scenario, backend, seed: opts.seed, timeScale, signal, baseDir: opts.file != null ? path.dirname(path.resolve(opts.file)) : undefined })
      const run = ctx
      let proxies: LinkProxies | undefined
      if (faults) {
        const own = backend.startToxiproxy != null ? await backend.startToxiproxy(signal) : undefined
        const server = stack.use(own?.server ?? await startToxiproxy({ signal }))
        // Toxiproxy answers a toxic's removal only once the data it holds has drained: allow for slow links.
        proxies = stack.use(new LinkProxies(server, { runId: newRunId(), requestTimeoutMs: 20_000, listenHost: own?.listenHost ?? await backend.hostAddress(signal) }))
      }
      await buildNodes(run, { fixAddresses: faults })
      if (proxies != null) {
        await createLinks(run, proxies)
        // Runs after the nodes stopped (the stack unwinds in reverse): Toxiproxy credits bytes on close.
        stack.defer(async () => {
          invalid = await bypassVerdict(run, outside).catch((err: unknown) => `the bypass check could not run: ${describeError(err)}`)
        })
      }
      stack.defer(() => { for (const t of run.faultState.timers) clearTimeout(t) })
      // Stop nodes before the backend goes: the backend's own disposal is the safety net, not the plan.
      stack.defer(async () => { await tearDown(run) })
      stack.defer(async () => {
        if (run.faultState.links.size > 0) outside = await connectionsOutsideProxies(run)
      })
      for (const [index, step] of scenario.steps.entries()) {
        signal.throwIfAborted()
        run.evidence.currentStep = index
        const label = stepLabel(step)
        opts.onStep?.(scenario.name, label)
        const stepStart = Date.now()
        let targets: string[] = []
        try {
          targets = await executeStep(run, step)
          // A step whose own check failed did not go "ok", even though nothing broke while it ran.
          const failed = run.evidence.assertions.filter(a => a.step === index && !a.passed)
          run.evidence.steps.push({
            index, kind: step.action, label, startedAt: stepStart, endedAt: Date.now(), ok: failed.length === 0,
            ...(failed.length > 0 ? { error: `${failed.length === 1 ? 'its check' : `${failed.length} of its checks`} failed: ${failed[0]!.description}` } : {}),
            targets
          })
        } catch (err) {
          if (err instanceof CommandError && err.code === 'not-supported') {
            // A node that does not implement a command cannot be checked with it: the run ends in error, naming the
            // check, so it is never read as a pass nor as the failure of what it checks.
            const what = `could not make the check "${label}": ${err.message}`
            run.evidence.uncheckable.push({ step: index, label, message: err.message })
            run.evidence.steps.push({ index, kind: step.action, label, startedAt: stepStart, endedAt: Date.now(), ok: false, error: what, targets })
            throw new Error(what)
          }
          run.evidence.steps.push({ index, kind: step.action, label, startedAt: stepStart, endedAt: Date.now(), ok: false, error: describeError(err), targets })
          throw err
        }
      }
    } catch (err) {
      if (err instanceof ScenarioAbort) {
        status = 'failed'
        reason = err.message
      } else if (deadline.aborted) {
        status = 'error'
        reason = `scenario exceeded its deadline of ${limit.ms} ms (${limit.allowanceMs} ms allowance + ${limit.planMs} plan ms × timeScale ${timeScale})`
      } else if (opts.signal?.aborted === true) {
        status = 'error'
        reason = 'interrupted'
      } else {
        status = 'error'
        reason = describeError(err)
      }
    } finally {
      // A teardown failure is a finding about this scenario, recorded in it: it must never cost the run its report.
      try {
        await stack.disposeAsync()
      } catch (err) {
        teardownError = err
      }
    }
  }
  if (teardownError != null) {
    const what = `teardown failed: ${describeTeardown(teardownError)}`
    if (status === 'passed') status = 'error'
    reason = reason == null ? what : `${reason}; ${what}`
  }
  const endedAt = Date.now()
  const harness = health.stop()
  const assertions = ctx?.evidence.assertions ?? []
  if (status === 'passed') {
    if (assertions.length === 0) {
      status = 'error'
      reason = 'the scenario asserts nothing: add an expect block, a wait, an assert or a matrix expectation'
    } else if (assertions.some(a => !a.passed)) {
      status = 'failed'
    }
  }
  if (invalid != null && status === 'passed') {
    // An invalid run is never a pass: the fault it claims to test may not have happened.
    status = 'failed'
    reason = invalid
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
    nodes: [...(ctx?.roster.nodes.values() ?? [])].map(n => ({
      name: n.name,
      role: n.spec.role === 'blackhole' || n.spec.role === 'external' ? 'external' as const : n.spec.role,
      ...(n.peerId != null ? { peerId: n.peerId } : {}),
      multiaddrs: n.address != null ? [n.address] : [],
      ...outputOf(n)
    })),
    steps: ctx?.evidence.steps ?? [],
    assertions,
    events: [...(ctx?.evidence.events ?? [])].sort((a, b) => a.time - b.time),
    ...(ctx?.evidence.matrix != null ? { matrix: ctx.evidence.matrix } : {}),
    ...(ctx != null && ctx.evidence.matrices.length > 0 ? { matrices: ctx.evidence.matrices } : {}),
    faults: ctx?.evidence.faults ?? [],
    ...(ctx != null && ctx.evidence.sweep.length > 0 ? { sweep: ctx.evidence.sweep } : {}),
    ...(invalid != null ? { invalid } : {}),
    recoveries: ctx?.evidence.recoveries ?? [],
    ...((ctx?.evidence.uncheckable.length ?? 0) > 0 ? { uncheckable: ctx!.evidence.uncheckable } : {}),
    harness,
    deadline: limit
  }
}

function outputOf (node: RunNode): { output?: NonNullable<ScenarioRecord['nodes'][number]['output']> } {
  const output = nodeOutput(node.outputs)
  return output != null ? { output } : {}
}

/** The stack wraps several failures in SuppressedErrors, the first one innermost: list them all, in order. */
function describeTeardown (err: unknown): string {
  const messages: string[] = []
  let current: unknown = err
  while (current instanceof SuppressedError) {
    messages.unshift(describeError(current.error))
    current = current.suppressed
  }
  messages.unshift(describeError(current))
  return messages.join('; ')
}
