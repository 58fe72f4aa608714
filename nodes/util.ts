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

/** Waits `ms`, or rejects when the signal fires: the only way chiral-sim sleeps. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  const { setTimeout: wait } = await import('node:timers/promises')
  await wait(ms, undefined, { signal })
}
