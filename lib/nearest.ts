/**
 * The name a mistyped one most likely meant, for "did you mean" in messages
 * about unknown flags and unknown options.
 */

/**
 * Edit distance of two short strings: insertions, deletions, substitutions,
 * and swaps of two neighbours (`levle` is one edit from `level`).
 */
export function distance (a: string, b: string): number {
  let before: number[] = []
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      )
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (before[j - 2] as number) + 1)
      current[j] = d
    }
    before = previous
    previous = current
  }
  return previous[b.length] as number
}

/**
 * The one of `names` nearest to `typed`: a typo or two (up to one edit per
 * three characters, at most three; the first of equals wins), or else a unique
 * prefix of at least three characters. `normalise` applies to both sides.
 */
export function nearest (typed: string, names: readonly string[], normalise: (name: string) => string = (name) => name): string | undefined {
  const wanted = normalise(typed)
  let best: string | undefined
  let bestDistance = Math.min(3, Math.floor(wanted.length / 3)) + 1
  for (const name of names) {
    const candidate = normalise(name)
    // The distance is at least the difference of the lengths: a name that cannot come near
    // enough is not measured (a 100,000-character flag was measured against every name, seconds of CPU).
    if (Math.abs(wanted.length - candidate.length) >= bestDistance) continue
    const d = distance(wanted, candidate)
    if (d < bestDistance) {
      best = name
      bestDistance = d
    }
  }
  if (best === undefined && wanted.length >= 3) {
    const prefixed = names.filter((name) => normalise(name).startsWith(wanted))
    if (prefixed.length === 1) best = prefixed[0]
  }
  return best
}
