import { multiaddr } from '@multiformats/multiaddr'

/** The /p2p/ peer ID of a multiaddr string, or undefined when it names none. */
export function peerIdOfAddr (addr: string): string | undefined {
  return multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
}

/** An error as one readable line (defined with the error categories, which walk errors the same way). */
export { describeError } from './errors.ts'

/** A signal that fires after `ms` or when `parent` fires, whichever comes first; `timedOut()` says which. */
export function deadline (ms: number, parent?: AbortSignal): { signal: AbortSignal, timedOut: () => boolean } {
  const timeout = AbortSignal.timeout(ms)
  const signal = parent == null ? timeout : AbortSignal.any([timeout, parent])
  return { signal, timedOut: () => timeout.aborted }
}

/**
 * deadline() whose end can be pushed back (never brought forward) until it fires: for work whose later part earns
 * more time once its first part is done. `dispose()` clears the timer when the work ends first.
 */
export function extendableDeadline (ms: number, parent?: AbortSignal): { signal: AbortSignal, timedOut: () => boolean, end: () => number, extendTo: (at: number) => void, dispose: () => void } {
  const controller = new AbortController()
  let end = Date.now() + ms
  const fire = (): void => { controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')) }
  let timer = setTimeout(fire, ms)
  timer.unref()
  return {
    signal: parent == null ? controller.signal : AbortSignal.any([controller.signal, parent]),
    timedOut: () => controller.signal.aborted,
    end: () => end,
    extendTo: (at) => {
      if (controller.signal.aborted || at <= end) return
      clearTimeout(timer)
      end = at
      timer = setTimeout(fire, at - Date.now())
      timer.unref()
    },
    dispose: () => { clearTimeout(timer) }
  }
}

/**
 * `promise`, or a rejection with `message` once `timeoutMs` passed (none: no time limit) or `signal` fired, whichever
 * comes first: the one deadline helper for work that takes no signal of its own. The work itself keeps running.
 */
export async function withDeadline<T> (promise: Promise<T>, timeoutMs: number | undefined, message: string, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const limits = new Promise<never>((_resolve, reject) => {
    if (timeoutMs != null) timer = setTimeout(() => { reject(new Error(message)) }, timeoutMs)
    if (signal != null) {
      onAbort = () => { reject(new Error(message)) }
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
  })
  try {
    return await Promise.race([promise, limits])
  } finally {
    clearTimeout(timer)
    if (onAbort != null) signal?.removeEventListener('abort', onAbort)
  }
}

/** Waits `ms`, or rejects when the signal fires: the only way chiral-sim sleeps. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  const { setTimeout: wait } = await import('node:timers/promises')
  await wait(ms, undefined, { signal })
}
