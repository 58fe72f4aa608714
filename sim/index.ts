/**
 * @packageDocumentation
 *
 * The harness: it runs scenarios against real libp2p nodes and records what happened. `runSuite` runs scenarios
 * (a small worker pool, each scenario isolated) and returns the `RunRecord` (scenarios/record.ts); `runScenario`
 * runs one on a backend. A backend (`createBackend`: memory | tcp in-process, process, docker) is "start a node and
 * reach its commands"; the runner (`runner/`) dispatches each step to its handler, injects faults through
 * Toxiproxy on the links between nodes (`faults/`), builds the discovery matrix and diagnoses asymmetries
 * (`diagnosis.ts`). `host/` holds what the harness needs of its own machine: free ports, blackholes, child
 * processes, the exit hook. Reports are written by `chiral-sim/reports`; the CLI is cli/main.ts.
 *
 * @example
 * ```ts
 * import { loadBuiltin } from 'chiral-sim/scenarios'
 * import { runSuite } from 'chiral-sim/sim'
 * import { writeReports } from 'chiral-sim/reports'
 *
 * const record = await runSuite(await loadBuiltin(['plan']), { mode: 'memory', seed: 42, timeScale: 0.1 })
 * await writeReports(record, 'chiral-report')   // report.json, report.html, junit.xml
 * ```
 */
export { runSuite } from './suite.ts'
export type { SuiteOptions } from './suite.ts'
export { runScenario } from './runner/run-scenario.ts'
export { createBackend } from './backends/index.ts'
export type { Backend, StartedNode } from './backends/backend.ts'
export { diagnose } from './diagnosis.ts'
