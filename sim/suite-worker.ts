import { parentPort } from 'node:worker_threads'
import { describeError } from '../nodes/util.ts'
import { createBackend } from './backends/index.ts'
import { runScenario } from './runner/run-scenario.ts'
import type { FromWorker, ToWorker } from './suite-workers.ts'

/**
 * A worker thread of `runSuite` (sim/suite-workers.ts): it runs the scenarios it is sent, each exactly as the main
 * thread would (its own backend, nodes, proxies and deadline), on an event loop of its own, so that scenarios side
 * by side use more than one core. One abort (Ctrl-C in the main thread) tears down every scenario it runs.
 */

const port = parentPort
if (port == null) throw new Error('sim/suite-worker.ts runs only as a worker thread of runSuite')

const controller = new AbortController()
const post = (message: FromWorker): void => { port.postMessage(message) }

port.on('message', (message: ToWorker) => {
  if (message.type === 'abort') {
    controller.abort(new Error(message.reason))
    return
  }
  const { id, scenario, file, mode, seed, timeScale } = message
  runScenario(scenario, {
    mode,
    seed,
    timeScale,
    file,
    signal: controller.signal,
    createBackend,
    onStep: (name, label) => { post({ type: 'step', id, name, label }) }
  }).then(
    record => { post({ type: 'done', id, record }) },
    (err: unknown) => { post({ type: 'failed', id, error: describeError(err) }) }
  )
})
