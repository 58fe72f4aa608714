import { readFile } from 'node:fs/promises'
import path from 'node:path'
import YAML from 'yaml'
import { z } from 'zod'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { privateKeyFromSeed } from '../../nodes/libp2p.ts'
import { BUILTIN_DIR } from '../../scenarios/load.ts'
import { ScenarioSchema, type Scenario } from '../../scenarios/schema.ts'
import { createBackend } from '../backends/index.ts'
import type { Mode, ScenarioRecord } from '../../scenarios/record.ts'
import { runScenario } from '../runner/run-scenario.ts'
import { referenceBinaryMissing } from './binaries.ts'
import { peersThatNeverAdmittedBootstrap } from './known-races.ts'

/**
 * The interop matrix: the plan's tests and the asymmetry reproductions, each run with its bootstrap replaced by
 * another implementation (a plain js-libp2p node, the rust-libp2p and go-libp2p reference nodes of interop/) in
 * the configurations real deployments use, against peers of each implementation. Like libp2p/test-plans does for
 * transports, but for discovery.
 *
 * Every cell states what a correct harness must conclude there (`expected`): a bootstrap configured nicely, or
 * one that merely closes idle connections, must pass the plan's checks; one that rejects the peers' agent,
 * answers FIND_NODE with nobody, or speaks another DHT protocol must make the tests that need discovery fail. A
 * cell that passes where it must fail is a false verdict, the worst outcome there is.
 */

export const BOOTSTRAP_IMPLS = ['js', 'rust', 'go'] as const
export type BootstrapImpl = typeof BOOTSTRAP_IMPLS[number]
export const PEER_IMPLS = ['js', 'rust', 'go'] as const
export type PeerImpl = typeof PEER_IMPLS[number]

/**
 * Peers other than chiral-sim's own need a node that serves chiral-sim's control channel (issue 9, item 2): the go
 * and rust reference nodes do (`implementation: go | rust`). An implementation listed here has none yet, and its
 * column says so instead of pretending; a missing binary is said per cell.
 */
const PEER_UNAVAILABLE: Partial<Record<PeerImpl, string>> = {}

/** The bootstrap configurations: what deployed nodes turn, each on top of `nice`. */
export const CONFIGS = ['nice', 'idle-0', 'agent-admission', 'routable-only', 'protocol-mismatch'] as const
export type ConfigName = typeof CONFIGS[number]

const CONFIG_TEXT: Record<ConfigName, string> = {
  nice: 'server mode on /ipfs/kad/1.0.0, every identify address added to Kademlia, idle connections kept (rust: 10 s)',
  'idle-0': 'closes a connection as soon as no stream is open (rust-libp2p 0.53/0.54\'s default idle timeout of 0 s)',
  'agent-admission': 'disconnects, right after identify, every peer whose agent version does not start with "chiral-interop"',
  'routable-only': 'adds only routable (non-private, non-loopback) addresses to Kademlia: on loopback, none',
  'protocol-mismatch': 'serves its DHT on /other/kad/1.0.0 while the peers are told /ipfs/kad/1.0.0'
}

/** The flags each implementation takes for a configuration; undefined: it has no such knob. */
function configFlags (impl: BootstrapImpl, config: ConfigName): string[] | undefined {
  if (impl === 'js') {
    // scenarios/external/js-libp2p-bootstrap.mjs has one knob: the protocol.
    if (config === 'nice') return []
    if (config === 'protocol-mismatch') return ['--protocol', '/other/kad/1.0.0']
    return undefined
  }
  const nice = impl === 'rust' ? ['--idle-timeout', '10'] : []
  switch (config) {
    case 'nice': return nice
    case 'idle-0': return ['--idle-timeout', '0']
    case 'agent-admission': return [...nice, '--admit-agent-prefix', 'chiral-interop']
    case 'routable-only': return [...nice, '--routable-only']
    case 'protocol-mismatch': return [...nice, '--dht-protocol', '/other/kad/1.0.0']
  }
}

/** The tests: scenario files whose bootstrap `boot` the matrix replaces. */
export const TESTS = {
  'test-1': 'plan/1-normal-connection.yaml',
  'test-3': 'plan/3-bidirectional-discovery.yaml',
  'test-4': 'plan/4-health-monitoring.yaml',
  'test-5': 'interop/5-restart-newcomer.yaml',
  'test-6': 'plan/6-no-peers-online.yaml',
  'asym-client-mode': 'asymmetry/client-mode.yaml',
  'asym-address-mapper': 'asymmetry/address-mapper-tcp.yaml'
} as const
export type TestName = keyof typeof TESTS
export const TEST_NAMES = Object.keys(TESTS) as TestName[]

/**
 * What a correct harness concludes. Only Test 6 (one peer alone) passes against a bootstrap whose FIND_NODE
 * answers are empty: nobody else is online there, so "you might be first" is true.
 */
export function expectedOutcome (config: ConfigName, test: TestName): 'pass' | 'fail' {
  switch (config) {
    case 'nice': case 'idle-0': return 'pass'
    case 'routable-only': return test === 'test-6' ? 'pass' : 'fail'
    case 'agent-admission': case 'protocol-mismatch': return 'fail'
  }
}

const BOOT = 'boot'
const SEED = 'chiral-interop-bootstrap'
const JS_BOOTSTRAP = path.join(BUILTIN_DIR, 'external', 'js-libp2p-bootstrap.mjs')

export const CellSchema = z.object({
  bootstrap: z.enum(BOOTSTRAP_IMPLS),
  config: z.enum(CONFIGS),
  peer: z.enum(PEER_IMPLS),
  test: z.enum(TEST_NAMES as [TestName, ...TestName[]]),
  expected: z.enum(['pass', 'fail']),
  /**
   * `not-applicable`: the implementation has no such knob; `not-available`: its binary or peer is missing;
   * `incomplete`: a peer could not make one of the test's checks (`uncheckable`), so the cell has no verdict.
   */
  status: z.enum(['passed', 'failed', 'error', 'skipped', 'not-applicable', 'not-available', 'incomplete']),
  /** The measured outcome is what a correct harness concludes; undefined when nothing ran. */
  asExpected: z.boolean().optional(),
  durationMs: z.number().optional(),
  assertions: z.object({ passed: z.number(), total: z.number() }).optional(),
  /** The first failed assertion, the error, or why the cell did not run. */
  detail: z.string().optional(),
  scenario: z.string().optional(),
  /**
   * Peers whose kad-dht never admitted the bootstrap after they connected to it (known-races.ts): evidence for a
   * failed cell, e.g. rust-libp2p's ping handler dropping kad-dht's admission ping.
   */
  racedPeers: z.array(z.string()).optional(),
  /** The checks a peer could not make (the step and the peer's not-supported answer). */
  uncheckable: z.array(z.string()).optional()
})
export type Cell = z.infer<typeof CellSchema>

export const InteropMatrixSchema = z.object({
  schemaVersion: z.literal(1),
  generatedAt: z.string(),
  mode: z.string(),
  seed: z.number(),
  versions: z.record(z.string(), z.string()),
  configs: z.record(z.string(), z.string()),
  tests: z.record(z.string(), z.string()),
  peersUnavailable: z.record(z.string(), z.string()),
  cells: z.array(CellSchema)
})
export type InteropMatrix = z.infer<typeof InteropMatrixSchema>

export const VERSIONS: Record<BootstrapImpl, string> = {
  js: 'js-libp2p 3.x + @libp2p/kad-dht 16 (scenarios/external/js-libp2p-bootstrap.mjs)',
  rust: 'rust-libp2p 0.54.1 (interop/rust)',
  go: 'go-libp2p v0.49.0 + go-libp2p-kad-dht v0.42.2 (interop/go; as a peer: its control channel, interop/go/control.go)'
}

/**
 * The external node that stands in for `boot`: the implementation with the configuration's flags. The rust and go
 * nodes are `reference` nodes, so that in docker mode they run as containers of the run (their images built from
 * the binaries) and as processes on this machine otherwise; the js node is always a process here.
 */
export async function bootstrapNode (impl: BootstrapImpl, config: ConfigName): Promise<Record<string, unknown> | undefined> {
  const flags = configFlags(impl, config)
  if (flags == null) return undefined
  const peerId = peerIdFromPrivateKey(await privateKeyFromSeed(SEED)).toString()
  const args = ['--host', '{host}', '--port', '{port}', '--seed', SEED, ...flags]
  return {
    role: 'external',
    name: BOOT,
    ...(impl === 'js' ? { command: ['{node}', JS_BOOTSTRAP, ...args] } : { reference: impl, command: args }),
    readyLine: 'listening on',
    // A node that never answers a ping is an outcome to report, not a reason to wait the default 30 s.
    startTimeoutMs: 15_000,
    multiaddr: `/ip4/{host}/tcp/{port}/p2p/${peerId}`,
    // What the peers are told the bootstrap speaks; the protocol-mismatch configuration serves another one.
    dhtProtocol: '/ipfs/kad/1.0.0'
  }
}

/**
 * The test's scenario with `boot` replaced and every peer run by `peer`'s implementation; undefined when the
 * bootstrap has no such knob. A peer implementation that lacks a knob the test sets is `{ notApplicable }`, saying
 * which (validate's own message).
 */
export async function cellScenario (test: TestName, impl: BootstrapImpl, config: ConfigName): Promise<Scenario | undefined>
export async function cellScenario (test: TestName, impl: BootstrapImpl, config: ConfigName, peer: PeerImpl): Promise<Scenario | { notApplicable: string } | undefined>
export async function cellScenario (test: TestName, impl: BootstrapImpl, config: ConfigName, peer: PeerImpl = 'js'): Promise<Scenario | { notApplicable: string } | undefined> {
  const file = path.join(BUILTIN_DIR, TESTS[test])
  const raw = YAML.parse(await readFile(file, 'utf8')) as { name: string, nodes: Array<Record<string, unknown>>, [k: string]: unknown }
  const boot = raw.nodes.find(n => n.name === BOOT)
  if (boot == null || boot.role !== 'bootstrap' || Object.keys(boot).some(k => k !== 'role' && k !== 'name')) {
    throw new Error(`${file}: the interop matrix replaces a plain bootstrap named "${BOOT}"; this file has none`)
  }
  const external = await bootstrapNode(impl, config)
  if (external == null) return undefined
  const parsed = ScenarioSchema.safeParse({
    ...raw,
    name: `interop-${impl}-${config}-${test}${peer === 'js' ? '' : `-${peer}-peers`}`,
    tags: [...new Set([...(raw.tags as string[] | undefined ?? []), 'interop'])],
    nodes: raw.nodes.map(n => n.name === BOOT ? external : n.role === 'peer' && peer !== 'js' ? { ...n, implementation: peer } : n),
    steps: (raw.steps as Array<Record<string, unknown>>).map(firstPeerUnknown),
    // The bootstrap is a process on this machine or a container of the run: every mode the external runner
    // supports, whatever the file says.
    modes: undefined,
    modesReason: undefined
  })
  if (parsed.success) return parsed.data
  if (peer === 'js') throw parsed.error
  return { notApplicable: parsed.error.issues.map(i => `${i.path.join('.')}: ${i.message}`).join('; ') }
}

/**
 * A first peer alone is "you might be first" (verified) only on the bootstrap's word that nobody else is online,
 * which only chiral-sim's own bootstrap gives; an external one's empty FIND_NODE answers are no evidence (a
 * routable-only bootstrap answers every lookup with nobody). So where the plan expects the first-peer verdict, a
 * correct harness concludes `unknown` against any external bootstrap, and that is what the cell checks.
 */
function firstPeerUnknown (step: Record<string, unknown>): Record<string, unknown> {
  const expect = step.expect as Record<string, unknown> | undefined
  if (step.action !== 'verify' || expect?.firstPeer !== true) return step
  return { ...step, expect: { overall: 'unknown' }, label: `${String(step.label ?? 'first peer')}: unknown, an external bootstrap does not say who else is online` }
}

export interface InteropOptions {
  mode: Mode
  seed: number
  bootstraps?: readonly BootstrapImpl[]
  configs?: readonly ConfigName[]
  tests?: readonly TestName[]
  peers?: readonly PeerImpl[]
  signal?: AbortSignal
  onCell?: (cell: Cell) => void
}

function summarize (record: ScenarioRecord): string | undefined {
  if (record.status === 'passed') return undefined
  const failed = record.assertions.find(a => !a.passed)
  if (failed != null) return `${failed.description}: expected ${failed.expected}, actual ${failed.actual}`
  return record.reason ?? `${record.status} without a failed assertion`
}

/** Runs every cell, one at a time (the cells' timings must hold on a loaded 2-core machine). */
export async function runInteropMatrix (opts: InteropOptions): Promise<InteropMatrix> {
  const cells: Cell[] = []
  const push = (cell: Cell): void => { cells.push(cell); opts.onCell?.(cell) }
  for (const bootstrap of opts.bootstraps ?? BOOTSTRAP_IMPLS) {
    const missing = bootstrap === 'js' ? undefined : referenceBinaryMissing(bootstrap)
    for (const config of opts.configs ?? CONFIGS) {
      for (const peer of opts.peers ?? PEER_IMPLS) {
        for (const test of opts.tests ?? TEST_NAMES) {
          const base = { bootstrap, config, peer, test, expected: expectedOutcome(config, test) }
          const unavailable = PEER_UNAVAILABLE[peer] ?? missing ?? (peer === 'js' ? undefined : referenceBinaryMissing(peer))
          if (unavailable != null) { push({ ...base, status: 'not-available', detail: unavailable }); continue }
          const scenario = await cellScenario(test, bootstrap, config, peer)
          if (scenario == null) { push({ ...base, status: 'not-applicable', detail: `the ${bootstrap} bootstrap has no "${config}" knob` }); continue }
          if ('notApplicable' in scenario) { push({ ...base, status: 'not-applicable', detail: `the ${peer} peer cannot be set up as this test needs: ${scenario.notApplicable}` }); continue }
          opts.signal?.throwIfAborted()
          const record = await runScenario(scenario, {
            mode: opts.mode, seed: opts.seed, file: path.join(BUILTIN_DIR, TESTS[test]), createBackend, ...(opts.signal != null ? { signal: opts.signal } : {})
          })
          // A check a peer could not make leaves the cell unjudged (counting it as "fails" would be a verdict nobody
          // made), unless a check made before it already failed: that failure is the verdict.
          const incomplete = (record.uncheckable ?? []).length > 0 && record.assertions.every(a => a.passed)
          const measured = incomplete ? undefined : record.status === 'passed' ? 'pass' : record.status === 'failed' || record.status === 'error' ? 'fail' : undefined
          const detail = summarize(record)
          const bootId = record.nodes.find(n => n.name === BOOT)?.peerId
          const raced = record.status !== 'passed' && bootId != null ? peersThatNeverAdmittedBootstrap(record, bootId) : []
          push({
            ...base,
            status: incomplete ? 'incomplete' : record.status,
            ...(measured != null ? { asExpected: measured === base.expected } : {}),
            durationMs: record.durationMs,
            assertions: { passed: record.assertions.filter(a => a.passed).length, total: record.assertions.length },
            ...(detail != null ? { detail } : {}),
            scenario: scenario.name,
            ...(raced.length > 0 ? { racedPeers: raced } : {}),
            ...((record.uncheckable ?? []).length > 0 ? { uncheckable: record.uncheckable!.map(u => `${u.label}: ${u.message}`) } : {})
          })
        }
      }
    }
  }
  return {
    schemaVersion: 1,
    generatedAt: new Date().toISOString(),
    mode: opts.mode,
    seed: opts.seed,
    versions: { ...VERSIONS },
    configs: { ...CONFIG_TEXT },
    tests: Object.fromEntries(TEST_NAMES.map(t => [t, TESTS[t]])),
    peersUnavailable: Object.fromEntries(Object.entries(PEER_UNAVAILABLE).filter(([p]) => (opts.peers ?? PEER_IMPLS).includes(p as PeerImpl))),
    cells
  }
}
