import { createHash } from 'node:crypto'

/** A seeded PRNG (mulberry32): the only source of randomness in a run, so a seed reproduces a run. */
export function prng (seed: number | string): () => number {
  let a = typeof seed === 'number' ? seed >>> 0 : createHash('sha256').update(seed).digest().readUInt32LE(0)
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Deterministic content of `size` bytes for a label (SHA-256 in counter mode). */
export function seededBytes (label: string, size: number): Uint8Array {
  const out = new Uint8Array(size)
  for (let offset = 0, counter = 0; offset < size; counter++) {
    const block = createHash('sha256').update(`${label}/${counter}`).digest()
    out.set(block.subarray(0, Math.min(block.length, size - offset)), offset)
    offset += block.length
  }
  return out
}

/** A fresh seed when none is given: printed in the report so the run can be repeated. */
export function newSeed (): number {
  return createHash('sha256').update(`${process.pid}/${process.hrtime.bigint()}`).digest().readUInt32LE(0) % 1_000_000_000
}
