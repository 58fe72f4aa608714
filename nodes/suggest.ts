/**
 * "Did you mean": the closest known word to a mistyped one (a command, an option, a field name), for error
 * messages. Used by the CLI, scenario validation and the command schemas.
 */

/** Edit distance counting a swap of neighbours as one edit ("claen" → "clean"). */
export function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => i === 0 ? j : j === 0 ? i : 0))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/**
 * ' (did you mean "x"?)' for the closest known word, case aside, within one edit per three letters (at most two),
 * else ''. A typo is a small edit; anything further is a different word.
 */
export function didYouMean (word: string, known: Iterable<string>): string {
  let best: { k: string, d: number } | undefined
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase())
    if (best == null || d < best.d) best = { k, d }
  }
  return best != null && best.k !== word && best.d <= Math.max(1, Math.min(2, Math.floor(word.length / 3))) ? ` (did you mean "${best.k}"?)` : ''
}
