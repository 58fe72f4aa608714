import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { PlanTimingSchema } from './config.ts'
import { describeError } from './util.ts'

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
