import os from 'node:os'
import { Worker } from 'node:worker_threads'
import type { Scenario } from '../scenarios/schema.ts'
import type { Mode, ScenarioRecord } from '../scenarios/record.ts'

/**
 * Worker threads for a suite's scenarios: each thread has its own event loop and heap, so in-process nodes of
 * scenarios side by side run on different cores instead of sharing one JavaScript thread. A scenario stays whole
 * inside one thread (its memory-transport registry, its backend, its deadline), as isolated as in the main thread.
 *
 * Threads rather than child processes: a harness killed outright (SIGKILL, OOM) takes its threads with it, and what
 * a thread starts is tied to the harness as before (node processes watch their stdin, the Toxiproxy server gets the
 * kernel's parent-death signal when the thread that forked it ends).
 */

/** Main thread → worker. */
export type ToWorker =
  | { type: 'run', id: number, scenario: Scenario, file: string | undefined, mode: Mode, seed: number, timeScale: number | undefined }
  | { type: 'abort', reason: string }

/** Worker → main thread. */
export type FromWorker =
  | { type: 'step', id: number, name: string, label: string }
  | { type: 'done', id: number, record: ScenarioRecord }
  | { type: 'failed', id: number, error: string }

/**
 * Threads by default: one per core, except docker and swarm (they drive one engine, one scenario at a time) and
 * shards (each scenario already spreads its nodes over every core).
 */
export function defaultWorkers (mode: Mode): number {
  return mode === 'docker' || mode === 'swarm' || mode === 'shards' ? 1 : os.availableParallelism()
}

/** A worker thread ended (crashed, ran out of memory) while it ran the scenario. */
export class WorkerLostError extends Error {
  override readonly name = 'WorkerLostError'
}

interface Pending {
  resolve: (record: ScenarioRecord) => void
  reject: (err: Error) => void
  onStep: ((name: string, label: string) => void) | undefined
}

interface Slot { worker: Worker, running: Set<number>, gone: boolean }

const WORKER_URL = new URL('./suite-worker.ts', import.meta.url)

export class ScenarioWorkers implements AsyncDisposable {
  private readonly slots: Slot[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private abortReason: string | undefined

  private readonly size: number

  constructor (size: number) {
    this.size = size
  }

  /** Runs one scenario in the least busy thread (started on first use; a thread that died is replaced). */
  async run (job: Omit<Extract<ToWorker, { type: 'run' }>, 'type' | 'id'>, onStep?: (name: string, label: string) => void): Promise<ScenarioRecord> {
    const slot = this.pick()
    const id = this.nextId++
    slot.running.add(id)
    try {
      return await new Promise<ScenarioRecord>((resolve, reject) => {
        this.pending.set(id, { resolve, reject, onStep })
        slot.worker.postMessage({ type: 'run', id, ...job } satisfies ToWorker)
      })
    } finally {
      slot.running.delete(id)
      this.pending.delete(id)
    }
  }

  /** Ctrl-C: every scenario running in a thread is torn down and returns its (interrupted) record. */
  abort (reason: string): void {
    this.abortReason = reason
    for (const slot of this.slots) if (!slot.gone) slot.worker.postMessage({ type: 'abort', reason } satisfies ToWorker)
  }

  private pick (): Slot {
    for (let i = this.slots.length - 1; i >= 0; i--) if (this.slots[i]!.gone) this.slots.splice(i, 1)
    if (this.slots.length < this.size) {
      const slot = this.start()
      this.slots.push(slot)
      return slot
    }
    return this.slots.reduce((a, b) => b.running.size < a.running.size ? b : a)
  }

  private start (): Slot {
    // The worker's stdout/stderr go through this thread (Node's default), so its logs land in the harness's output.
    const worker = new Worker(WORKER_URL)
    const slot: Slot = { worker, running: new Set(), gone: false }
    worker.on('message', (message: FromWorker) => {
      const p = this.pending.get(message.id)
      if (p == null) return
      if (message.type === 'step') p.onStep?.(message.name, message.label)
      else if (message.type === 'done') p.resolve(message.record)
      else p.reject(new WorkerLostError(message.error))
    })
    const lost = (why: string): void => {
      if (slot.gone) return
      slot.gone = true
      for (const id of slot.running) this.pending.get(id)?.reject(new WorkerLostError(why))
    }
    worker.on('error', err => { lost(`its worker thread crashed: ${err.message}`) })
    worker.on('exit', code => { lost(`its worker thread exited (code ${code})`) })
    if (this.abortReason != null) worker.postMessage({ type: 'abort', reason: this.abortReason } satisfies ToWorker)
    return slot
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    const slots = this.slots.splice(0)
    for (const slot of slots) slot.gone = true
    await Promise.all(slots.map(async slot => await slot.worker.terminate()))
  }
}
