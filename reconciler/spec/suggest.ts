/** "Did you mean" for unknown keys, kinds and names: the closest candidate within a small edit distance. */

// One answer per (candidate list, input): 50,000 unknown keys against the same 20 keys, or thousands of
// references against one registry, ask the same questions again and again.
const memo = new WeakMap<object, Map<string, string | undefined>>();

export function closest(input: string, candidatesIn: Iterable<string>): string | undefined {
  const cache = typeof candidatesIn === 'object' ? memo.get(candidatesIn) : undefined;
  if (cache?.has(input)) return cache.get(input);
  const result = compute(input, candidatesIn);
  if (typeof candidatesIn === 'object') {
    if (cache) cache.set(input, result);
    else memo.set(candidatesIn, new Map([[input, result]]));
  }
  return result;
}

function compute(input: string, candidatesIn: Iterable<string>): string | undefined {
  const candidates = [...candidatesIn];
  let best: string | undefined;
  let bestScore = Infinity;
  const lower = input.toLowerCase();
  for (const c of candidates) {
    // The distance is at least the difference in length: no need to compute it when that already loses.
    if (Math.abs(c.length - lower.length) >= bestScore) continue;
    const d = distance(lower, c.toLowerCase(), bestScore);
    if (d < bestScore) {
      bestScore = d;
      best = c;
    }
  }
  if (best === undefined) return undefined;
  // Abbreviations ("prod" for "production") are a common kind of typo too.
  if (lower.length >= 3) {
    const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(lower));
    if (prefixed.length === 1 && bestScore > 1) return prefixed[0];
  }
  const limit = Math.max(2, Math.floor(Math.max(input.length, best.length) / 3));
  return bestScore <= limit ? best : undefined;
}

export function didYouMean(input: string, candidates: Iterable<string>): string {
  const c = closest(input, candidates);
  return c ? ` Did you mean "${c}"?` : '';
}

/** Levenshtein distance; stops early (returning `cutoff`) once every path is at least `cutoff` long. */
function distance(a: string, b: string, cutoff = Infinity): number {
  if (a === b) return 0;
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    let rowMin = prev[0];
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
      if (prev[j]! < rowMin) rowMin = prev[j]!;
    }
    if (rowMin >= cutoff) return cutoff;
  }
  return prev[b.length]!;
}
