import { accessSync, constants } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { z } from 'zod'
import { ReferenceImplSchema } from '../../scenarios/schema.ts'

/**
 * Where the interop reference nodes live once `scripts/setup-interop.sh` built them: `interop/bin/` of this
 * checkout (git-ignored; the script's caches stay outside the clone), or wherever CHIRAL_RUST_NODE /
 * CHIRAL_GO_NODE point.
 */

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const INTEROP_BIN_DIR = path.join(REPO_ROOT, 'interop', 'bin')

export type ReferenceImpl = z.infer<typeof ReferenceImplSchema>
export const REFERENCE_IMPLS: readonly ReferenceImpl[] = ReferenceImplSchema.options

/** The repository of the image docker mode runs a reference node from (tagged with the binary's hash). */
export function referenceImageRepo (impl: ReferenceImpl): string {
  return `chiral-sim-interop-${impl}`
}

const ENV: Record<ReferenceImpl, string> = { rust: 'CHIRAL_RUST_NODE', go: 'CHIRAL_GO_NODE' }

export function referenceBinaryPath (impl: ReferenceImpl): string {
  const fromEnv = process.env[ENV[impl]]
  return fromEnv != null && fromEnv !== '' ? path.resolve(fromEnv) : path.join(INTEROP_BIN_DIR, `chiral-${impl}-node`)
}

/** Why the binary cannot run (undefined when it can), in words that say how to get it. */
export function referenceBinaryMissing (impl: ReferenceImpl): string | undefined {
  const file = referenceBinaryPath(impl)
  try {
    accessSync(file, constants.X_OK)
    return undefined
  } catch {
    return `no ${impl} reference node at ${file}: run \`bash scripts/setup-interop.sh ${impl}\` (needs ${impl === 'rust' ? 'cargo' : 'go'}), or set ${ENV[impl]}`
  }
}
