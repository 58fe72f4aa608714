import { createHash } from 'node:crypto'
import { accessSync, constants, readFileSync, readdirSync } from 'node:fs'
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

/**
 * Why the binary cannot run (undefined when it can), in words that say how to get it. A binary of this checkout's
 * interop/bin built from other sources than the checkout now has (a pull since the last set-up) counts as missing:
 * it would fail on flags or commands it does not know yet, far from the cause. One named by the environment is
 * the user's choice and is not checked.
 */
export function referenceBinaryMissing (impl: ReferenceImpl): string | undefined {
  const file = referenceBinaryPath(impl)
  const setup = `run \`bash scripts/setup-interop.sh ${impl}\` (needs ${impl === 'rust' ? 'cargo' : 'go'}), or set ${ENV[impl]}`
  try {
    accessSync(file, constants.X_OK)
  } catch {
    return `no ${impl} reference node at ${file}: ${setup}`
  }
  if (process.env[ENV[impl]] != null && process.env[ENV[impl]] !== '') return undefined
  let built: string | undefined
  try {
    built = readFileSync(`${file}.source`, 'utf8').trim()
  } catch {}
  if (built !== sourceHash(impl)) {
    return `the ${impl} reference node at ${file} was built from other sources than interop/${impl} has now: ${setup}`
  }
  return undefined
}

/**
 * The hash scripts/setup-interop.sh writes next to a binary (its source_hash: \`sha256sum\` of each source file in
 * C order, then of that listing); the file lists must stay the same in both.
 */
function sourceHash (impl: ReferenceImpl): string {
  const dir = path.join(REPO_ROOT, 'interop', impl)
  const files = impl === 'go'
    ? readdirSync(dir, { withFileTypes: true })
      .filter(e => e.isFile() && (e.name.endsWith('.go') || e.name === 'go.mod' || e.name === 'go.sum')).map(e => `./${e.name}`)
    : ['Cargo.toml', 'Cargo.lock', ...readdirSync(path.join(dir, 'src'), { recursive: true, withFileTypes: true })
        .filter(e => e.isFile()).map(e => path.relative(dir, path.join(e.parentPath, e.name)))]
  const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')
  const listing = files.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map(f => `${sha(readFileSync(path.join(dir, f)))}  ${f}\n`).join('')
  return sha(listing)
}
