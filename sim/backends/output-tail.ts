import type { NodeOutput } from '../../scenarios/record.ts'

/**
 * The bound on what the run record keeps of a node's output. A node that logs in a loop must not grow report.json
 * without limit; the end of the output is what explains a crash, so the end is what is kept.
 */

/** Characters kept per start of a node. */
export const OUTPUT_TAIL_CHARS = 16 * 1024
/** Starts kept per node: the first (how it came up) and the last ones (how it ended), for a bootstrap in a crash loop. */
export const OUTPUT_STARTS_KEPT = 6

/** `text` followed by `chunk`, cut to the last `max` characters. */
export function appendTail (text: string, chunk: string, max = OUTPUT_TAIL_CHARS): string {
  const joined = text + chunk
  return joined.length <= max ? joined : joined.slice(-max)
}

/** A node's output across its starts, as the record holds it; undefined when nothing was printed. */
export function nodeOutput (starts: ReadonlyArray<() => string>): NodeOutput | undefined {
  const texts = starts.map(read => {
    const text = read()
    return text.length > OUTPUT_TAIL_CHARS ? `[… ${text.length - OUTPUT_TAIL_CHARS} earlier characters not kept]\n${text.slice(-OUTPUT_TAIL_CHARS)}` : text
  })
  if (texts.every(t => t.trim() === '')) return undefined
  const numbered = texts.map((text, i) => ({ text, n: i + 1 }))
  const kept = numbered.length <= OUTPUT_STARTS_KEPT
    ? numbered
    : [numbered[0]!, ...numbered.slice(-(OUTPUT_STARTS_KEPT - 1))]
  const sections = kept.map(({ text, n }) => texts.length === 1 ? text : `── start ${n} of ${texts.length} ──\n${text.trim() === '' ? '(no output)\n' : text}`)
  return { text: sections.join(sections.length > 1 ? '\n' : ''), starts: texts.length }
}
