import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { PlanTimingSchema } from './config.ts'
import { describeError, withDeadline } from './util.ts'

describe('describeError', () => {
  it('a ZodError met at run time is one line naming the fields, not a JSON dump', () => {
    const err = PlanTimingSchema.safeParse({ healthyLatencyMs: 600, connectionTimeoutMs: 1 }).error
    const text = describeError(err)
    expect(text).toBe('invalid value: connectionTimeoutMs: connectionTimeoutMs must be at least 5000 (the plan allows 5–30 s); healthyLatencyMs: healthyLatencyMs (600) must be below degradedLatencyMs (500)')
    expect(describeError(z.object({ a: z.string() }).strict().safeParse({ a: 1, b: 2 }).error)).not.toMatch(/\n|\[\s*\{/)
  })

  it('other errors keep their class and message', () => {
    expect(describeError(new RangeError('too far'))).toBe('RangeError: too far')
    expect(describeError('plain')).toBe('plain')
  })
})

describe('withDeadline (the one deadline helper)', () => {
  it('passes a result or a rejection through, and rejects with the message when time runs out first', async () => {
    expect(await withDeadline(Promise.resolve(7), 1_000, 'late')).toBe(7)
    await expect(withDeadline(Promise.reject(new Error('own')), 1_000, 'late')).rejects.toThrow('own')
    await expect(withDeadline(new Promise(() => {}), 20, 'no answer within 20 ms')).rejects.toThrow('no answer within 20 ms')
  })

  it('rejects when the signal fires, also one that fired already; without a time limit only the signal ends the wait', async () => {
    const controller = new AbortController()
    const waiting = withDeadline(new Promise(() => {}), undefined, 'aborted', controller.signal)
    controller.abort()
    await expect(waiting).rejects.toThrow('aborted')
    await expect(withDeadline(new Promise(() => {}), undefined, 'aborted before', AbortSignal.abort())).rejects.toThrow('aborted before')
  })
})
