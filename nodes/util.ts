import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'

/** The /p2p/ peer ID of a multiaddr string, or undefined when it names none. */
export function peerIdOfAddr (addr: string): string | undefined {
  return multiaddr(addr).getComponents().findLast(c => c.name === 'p2p')?.value
}

/** An error's class and message, for events and reports (never a stack). */
export function describeError (err: unknown): string {
  // A ZodError's message is its issues as pretty-printed JSON: say which value is wrong in one line instead.
  if (err instanceof z.core.$ZodError) {
    const issues = err.issues.slice(0, 3).map(i => `${i.path.length > 0 ? i.path.join('.') : '(value)'}: ${i.message}`)
    return `invalid value: ${issues.join('; ')}${err.issues.length > 3 ? `; and ${err.issues.length - 3} more` : ''}`
  }
  if (err instanceof Error) return `${err.name}: ${err.message}`
  return String(err)
}

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
