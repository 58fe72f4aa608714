import type { DhtOptions } from '../nodes/config.ts'

/**
 * DHT settings the scale benches compare. `kad-dht-defaults` is the node as it ships; `alpha3-1path` walks as
 * go-libp2p does (3 queries in flight on one path instead of js kad-dht's 10 on each of 20 disjoint paths), which
 * contacts, and so connects to, far fewer peers per query.
 */
export const SCALE_PROFILES = {
  'kad-dht-defaults': {},
  'alpha3-1path': { alpha: 3, disjointPaths: 1 }
} as const satisfies Record<string, Partial<DhtOptions>>
export type ScaleProfile = keyof typeof SCALE_PROFILES
export const SCALE_PROFILE_NAMES = Object.keys(SCALE_PROFILES) as ScaleProfile[]

/** `--profile NAME` of a bench's command line, or a one-line error naming the choices. */
export function parseProfile (value: string | undefined): ScaleProfile {
  const name = value ?? 'kad-dht-defaults'
  if (!(SCALE_PROFILE_NAMES as string[]).includes(name)) {
    process.stderr.write(`--profile: unknown profile "${name}"; use ${SCALE_PROFILE_NAMES.join(' or ')}\n`)
    process.exit(2)
  }
  return name as ScaleProfile
}
