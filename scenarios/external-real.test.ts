import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { BUILTIN_DIR } from './load.ts'
import { ScenarioSchema } from './schema.ts'
import { createBackend } from '../sim/backends/index.ts'
import { referenceBinaryMissing, referenceBinaryPath, REFERENCE_IMPLS } from '../sim/interop/binaries.ts'
import { runScenario } from '../sim/runner/run-scenario.ts'

/**
 * The verdicts of issue 9 against the real thing: the rust-libp2p 0.54 and go-libp2p reference bootstraps
 * (interop/, built by scripts/setup-interop.sh) with the knobs real deployments turn — an idle timeout of 0, an
 * agent admission policy, another DHT protocol, routable-only addresses. scenarios/external.test.ts checks the same
 * verdicts against the js demo bootstrap, which needs nothing to be built.
 */
const PEER_ID = '12D3KooWCNVcVhbwZJh8gKJKqb8y8PxWHTHMGWcSopezMJsLhfQC'

for (const impl of REFERENCE_IMPLS) {
  const missing = referenceBinaryMissing(impl)
  const ext = (args: string[], over: Record<string, unknown> = {}): Record<string, unknown> => ({
    role: 'external',
    name: 'ext',
    command: [referenceBinaryPath(impl), '--host', '127.0.0.1', '--port', '{port}', '--seed', 'chiral-external-demo', '--kad-mode', 'server', ...args, '--exit-on-stdin-close'],
    readyLine: 'listening on',
    multiaddr: `/ip4/127.0.0.1/tcp/{port}/p2p/${PEER_ID}`,
    ...over
  })
  const cases: Array<[string, unknown[], unknown[]]> = [
    ['is healthy with an idle timeout of 0 (judged on fresh connections)', [ext(['--idle-timeout', '0']), { role: 'peer', name: 'A', autoMonitor: false }], [
      { action: 'start', nodes: ['ext', 'A'] },
      { action: 'connect', nodes: ['A'], expect: { success: true, bootstrap: 'ext' } },
      { action: 'health', nodes: ['A'], expect: { isReachable: true } },
      { action: 'pause', ms: 300 },
      { action: 'health', nodes: ['A'], expect: { isReachable: true } }
    ]],
    ['rejects an agent it does not admit: "rejected", and admits the one it does', [
      ext(['--admit-agent-prefix', 'chiral-admitted/']),
      { role: 'peer', name: 'A', agentVersion: 'some-client/0.1.0' },
      { role: 'peer', name: 'B', agentVersion: 'chiral-admitted/1.0.0' }
    ], [
      { action: 'start', nodes: ['ext', 'A', 'B'] },
      { action: 'connect', nodes: ['A'], expect: { success: false, category: 'rejected' } },
      { action: 'connect', nodes: ['B'], expect: { success: true, bootstrap: 'ext' } }
    ]],
    ['on another DHT protocol is "protocol" at connect', [ext(['--dht-protocol', '/other/kad/1.0.0'], { dhtProtocol: '/ipfs/kad/1.0.0' }), { role: 'peer', name: 'A' }], [
      { action: 'start', nodes: ['ext', 'A'] },
      { action: 'connect', nodes: ['A'], expect: { success: false, category: 'protocol' } }
    ]],
    ['keeping only routable addresses leaves two loopback peers blind, never "verified"', [ext(['--routable-only']), { role: 'peer', name: 'A' }, { role: 'peer', name: 'B' }], [
      { action: 'start', nodes: ['ext', 'A', 'B'] },
      { action: 'connect', nodes: ['A', 'B'], expect: { success: true, bootstrap: 'ext' } },
      { action: 'verify', nodes: ['A', 'B'], expect: { firstPeer: false } },
      { action: 'matrix', expect: { asymmetries: [], blind: [{ peers: ['A', 'B'], cause: 'empty-answers' }] } }
    ]]
  ]
  describe(`a ${impl}-libp2p reference bootstrap`, () => {
    for (const [title, nodes, steps] of cases) {
      it.skipIf(missing != null)(`${title}${missing != null ? ` — skipped: ${missing}` : ''}`, async () => {
        const scenario = ScenarioSchema.parse({ name: `real-${impl}`, title, description: 'verdicts against a reference bootstrap', nodes, steps })
        const record = await runScenario(scenario, { mode: 'tcp', seed: 7, file: path.join(BUILTIN_DIR, 'external', 'real.yaml'), createBackend })
        const failed = record.assertions.filter(a => !a.passed).map(a => `${a.description}: expected ${a.expected}, got ${a.actual}`)
        expect({ status: record.status, reason: record.reason, failed }).toEqual({ status: 'passed', reason: undefined, failed: [] })
        const verdicts = record.events.filter(e => e.type === 'discovery:status').map(e => 'status' in e ? e.status.overall : '')
        expect(verdicts.filter(v => v === 'verified')).toEqual([])
      }, 90_000)
    }
  })
}
