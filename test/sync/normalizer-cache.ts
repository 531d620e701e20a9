/**
 * `normalize(row, ctx)` for tests and benchmarks that normalise rows one call at a time: one compiled
 * normaliser per context object (see `createNormalizer`), so a property test of thousands of rows does not
 * compile a normaliser per row. The engine compiles its own per run and keeps nothing between runs.
 */
import { createNormalizer } from '../../reconciler/sync/normalize.ts';
import type { NormalizeContext, NormalizeResult, SourceRow } from '../../reconciler/sync/types.ts';

const compiled = new WeakMap<NormalizeContext, (row: SourceRow) => NormalizeResult>();
// The context of the previous call: rows come a source at a time, so this spares the WeakMap lookup.
let lastContext: NormalizeContext | undefined;
let lastNormalizer: ((row: SourceRow) => NormalizeResult) | undefined;

/** Normalises one source row with the context's compiled normaliser; a context must not change after its first use. */
export function normalize(row: SourceRow, ctx: NormalizeContext): NormalizeResult {
  if (ctx !== lastContext || lastNormalizer === undefined) {
    let normalizer = compiled.get(ctx);
    if (!normalizer) compiled.set(ctx, (normalizer = createNormalizer(ctx)));
    lastContext = ctx;
    lastNormalizer = normalizer;
  }
  return lastNormalizer(row);
}
