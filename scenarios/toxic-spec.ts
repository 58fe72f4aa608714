import { z } from 'zod'

/**
 * One Toxiproxy 2.12 toxic, as a scenario writes it: `{ type: latency, latency: 300, jitter: 50 }`. Scenarios use
 * this schema as their fault-step schema, so it checks more than Toxiproxy does: the server accepts a negative
 * latency or a zero slicer size (the latter recurses without end), and rejects a fractional millisecond only
 * with a JSON decode error. Ranges are generous; their point is to catch wrong units (µs for ms) and typos.
 *
 * "Down" is not a toxic in Toxiproxy: disable the proxy instead (Link.setEnabled(false)).
 */

const MAX_MS = 3_600_000
const MAX_RATE_KBPS = 10_000_000
const MAX_SLICE_BYTES = 1_048_576
const MAX_SLICE_DELAY_US = 10_000_000
const MAX_LIMIT_BYTES = 1_099_511_627_776

function intField (toxic: string, field: string, min: number, max: number, unit: string) {
  const msg = `${toxic}.${field} must be an integer from ${min} to ${max} ${unit}`
  return z.number({ error: msg }).int({ error: msg }).min(min, { error: msg }).max(max, { error: msg })
}

const stream = z.enum(['upstream', 'downstream'], {
  error: 'stream must be "upstream" (client → server) or "downstream" (server → client)'
}).default('downstream')

const toxicity = z.number({ error: 'toxicity must be a number from 0 to 1 (the share of connections affected)' })
  .min(0, { error: 'toxicity must be a number from 0 to 1 (the share of connections affected)' })
  .max(1, { error: 'toxicity must be a number from 0 to 1 (the share of connections affected)' })
  .default(1)

/** A strict object: a misspelt field (`latancy`) is an error that lists the fields the toxic takes. */
function toxicObject<T extends string, S extends z.ZodRawShape> (type: T, shape: S) {
  const allowed = ['type', ...Object.keys(shape)].join(', ')
  return z.strictObject({ type: z.literal(type), ...shape }, {
    error: iss => iss.code === 'unrecognized_keys' ? `${type}: unknown field ${iss.keys.map(k => JSON.stringify(k)).join(', ')} (allowed: ${allowed})` : undefined
  })
}

const common = {
  /** upstream = client → server (the dialer's writes); downstream = server → client. */
  stream,
  /** Share of new connections the toxic applies to, drawn per connection when it opens. */
  toxicity
}

export const LatencyToxicSchema = toxicObject('latency', {
  /** Delay added to every chunk, ms. */
  latency: intField('latency', 'latency', 0, MAX_MS, 'ms'),
  /** ± random variation, ms. */
  jitter: intField('latency', 'jitter', 0, MAX_MS, 'ms').default(0),
  ...common
})

export const BandwidthToxicSchema = toxicObject('bandwidth', {
  /** KB/s (1 KB = 1000 bytes in Toxiproxy's arithmetic). 0 is refused: Toxiproxy turns it into an endless stall. */
  rate: intField('bandwidth', 'rate', 1, MAX_RATE_KBPS, 'KB/s'),
  ...common
})

export const SlowCloseToxicSchema = toxicObject('slow_close', {
  /** Delay before the close is passed on, ms. */
  delay: intField('slow_close', 'delay', 0, MAX_MS, 'ms'),
  ...common
})

export const TimeoutToxicSchema = toxicObject('timeout', {
  /** Stops all data and closes the connection after this many ms; 0 holds it open, silent, until removed. */
  timeout: intField('timeout', 'timeout', 0, MAX_MS, 'ms'),
  ...common
})

export const ResetPeerToxicSchema = toxicObject('reset_peer', {
  /** Resets (TCP RST) this many ms after the first data arrives; 0 = at once. */
  timeout: intField('reset_peer', 'timeout', 0, MAX_MS, 'ms').default(0),
  ...common
})

export const SlicerToxicSchema = toxicObject('slicer', {
  /** Average slice size, bytes. */
  average_size: intField('slicer', 'average_size', 1, MAX_SLICE_BYTES, 'bytes'),
  /** ± variation of the slice size, bytes; must be smaller than average_size. */
  size_variation: intField('slicer', 'size_variation', 0, MAX_SLICE_BYTES, 'bytes').default(0),
  /** Pause after each slice, in MICROseconds (the one toxic attribute that is not in ms). */
  delay: intField('slicer', 'delay', 0, MAX_SLICE_DELAY_US, 'µs (microseconds)').default(0),
  ...common
}).refine(t => t.size_variation < t.average_size, {
  error: 'slicer.size_variation must be smaller than slicer.average_size',
  path: ['size_variation']
})

export const LimitDataToxicSchema = toxicObject('limit_data', {
  /** The connection is closed once this many bytes have passed in the toxic's direction. */
  bytes: intField('limit_data', 'bytes', 0, MAX_LIMIT_BYTES, 'bytes'),
  ...common
})

export const TOXIC_TYPES = ['latency', 'bandwidth', 'slow_close', 'timeout', 'reset_peer', 'slicer', 'limit_data'] as const

export const ToxicSpec = z.discriminatedUnion('type', [
  LatencyToxicSchema,
  BandwidthToxicSchema,
  SlowCloseToxicSchema,
  TimeoutToxicSchema,
  ResetPeerToxicSchema,
  SlicerToxicSchema,
  LimitDataToxicSchema
], { error: `type must be one of ${TOXIC_TYPES.join(', ')} (to take a link down, disable its proxy)` })

/** A validated toxic, defaults applied. */
export type ToxicSpec = z.infer<typeof ToxicSpec>
/** A toxic as written in a scenario, before defaults. */
export type ToxicSpecInput = z.input<typeof ToxicSpec>
export type ToxicType = ToxicSpec['type']
export type ToxicStream = ToxicSpec['stream']

/** The toxic's own attributes, as Toxiproxy's API and the RunRecord's FaultRecord.attributes take them. */
export function toxicAttributes (spec: ToxicSpec): Record<string, number> {
  const { type: _type, stream: _stream, toxicity: _toxicity, ...attributes } = spec
  return attributes
}

/** Parses a toxic, turning zod's issues into one readable message that names each bad field. */
export function parseToxicSpec (input: unknown): ToxicSpec {
  const result = ToxicSpec.safeParse(input)
  if (result.success) return result.data
  throw new Error(`invalid toxic ${JSON.stringify(input)}: ${result.error.issues.map(i => i.message).join('; ')}`, { cause: result.error })
}
