import { describe, expect, it } from 'vitest'
import { parseToxicSpec, TOXIC_TYPES, ToxicSpec, toxicAttributes } from './toxic-spec.ts'

function messages (input: unknown): string[] {
  const r = ToxicSpec.safeParse(input)
  return r.success ? [] : r.error.issues.map(i => i.message)
}

describe('ToxicSpec', () => {
  it('accepts every Toxiproxy 2.12 toxic and fills the defaults (downstream, toxicity 1)', () => {
    const minimal = [
      { type: 'latency', latency: 300 },
      { type: 'bandwidth', rate: 100 },
      { type: 'slow_close', delay: 1_000 },
      { type: 'timeout', timeout: 0 },
      { type: 'reset_peer' },
      { type: 'slicer', average_size: 64 },
      { type: 'limit_data', bytes: 1_024 }
    ]
    expect(minimal.map(m => m.type).sort()).toEqual([...TOXIC_TYPES].sort())
    expect(minimal.map(m => ToxicSpec.parse(m))).toEqual([
      { type: 'latency', latency: 300, jitter: 0, stream: 'downstream', toxicity: 1 },
      { type: 'bandwidth', rate: 100, stream: 'downstream', toxicity: 1 },
      { type: 'slow_close', delay: 1_000, stream: 'downstream', toxicity: 1 },
      { type: 'timeout', timeout: 0, stream: 'downstream', toxicity: 1 },
      { type: 'reset_peer', timeout: 0, stream: 'downstream', toxicity: 1 },
      { type: 'slicer', average_size: 64, size_variation: 0, delay: 0, stream: 'downstream', toxicity: 1 },
      { type: 'limit_data', bytes: 1_024, stream: 'downstream', toxicity: 1 }
    ])
  })

  it('keeps stream and toxicity when given', () => {
    expect(ToxicSpec.parse({ type: 'latency', latency: 5, jitter: 2, stream: 'upstream', toxicity: 0.25 }))
      .toEqual({ type: 'latency', latency: 5, jitter: 2, stream: 'upstream', toxicity: 0.25 })
  })

  it.each([
    [{ type: 'latency', latency: -1 }, 'latency.latency must be an integer from 0 to 3600000 ms'],
    [{ type: 'latency', latency: 1.5 }, 'latency.latency must be an integer from 0 to 3600000 ms'],
    [{ type: 'latency' }, 'latency.latency must be an integer from 0 to 3600000 ms'],
    [{ type: 'latency', latency: 10, jitter: 'x' }, 'latency.jitter must be an integer from 0 to 3600000 ms'],
    [{ type: 'bandwidth', rate: 0 }, 'bandwidth.rate must be an integer from 1 to 10000000 KB/s'],
    [{ type: 'slow_close', delay: 3_600_001 }, 'slow_close.delay must be an integer from 0 to 3600000 ms'],
    [{ type: 'timeout', timeout: -5 }, 'timeout.timeout must be an integer from 0 to 3600000 ms'],
    [{ type: 'reset_peer', timeout: -1 }, 'reset_peer.timeout must be an integer from 0 to 3600000 ms'],
    [{ type: 'slicer', average_size: 0 }, 'slicer.average_size must be an integer from 1 to 1048576 bytes'],
    [{ type: 'slicer', average_size: 10, delay: -1 }, 'slicer.delay must be an integer from 0 to 10000000 µs (microseconds)'],
    [{ type: 'slicer', average_size: 10, size_variation: 10 }, 'slicer.size_variation must be smaller than slicer.average_size'],
    [{ type: 'limit_data', bytes: -1 }, 'limit_data.bytes must be an integer from 0 to 1099511627776 bytes'],
    [{ type: 'latency', latency: 1, stream: 'up' }, 'stream must be "upstream" (client → server) or "downstream" (server → client)'],
    [{ type: 'latency', latency: 1, toxicity: 1.5 }, 'toxicity must be a number from 0 to 1 (the share of connections affected)'],
    [{ type: 'latency', latency: 1, toxicity: -0.1 }, 'toxicity must be a number from 0 to 1 (the share of connections affected)'],
    [{ type: 'down' }, 'type must be one of latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data (to take a link down, disable its proxy)'],
    [{ type: 'latency', latancy: 300 }, 'latency: unknown field "latancy" (allowed: type, latency, jitter, stream, toxicity)']
  ])('rejects %j, naming the field and the allowed range', (input, message) => {
    expect(messages(input)).toContain(message)
  })

  it('parseToxicSpec throws one readable error listing every problem', () => {
    expect(() => parseToxicSpec({ type: 'bandwidth', rate: -1, toxicity: 2 }))
      .toThrow('invalid toxic {"type":"bandwidth","rate":-1,"toxicity":2}: bandwidth.rate must be an integer from 1 to 10000000 KB/s; toxicity must be a number from 0 to 1 (the share of connections affected)')
  })

  it('toxicAttributes gives the attributes alone, as Toxiproxy and the FaultRecord take them', () => {
    expect(toxicAttributes(ToxicSpec.parse({ type: 'slicer', average_size: 64, size_variation: 8, delay: 10, stream: 'upstream' })))
      .toEqual({ average_size: 64, size_variation: 8, delay: 10 })
  })
})
