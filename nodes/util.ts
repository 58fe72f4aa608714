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
