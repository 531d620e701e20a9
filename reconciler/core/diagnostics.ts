/**
 * Diagnostics are how every expected problem travels through tidemark: bad YAML, a schema violation,
 * a missing reference, a policy rule, an API 4xx on one resource. They are collected and reported all
 * at once rather than thrown one at a time (Terraform's tfdiags, Atlas' sqlcheck).
 *
 * Codes are stable and prefixed by area (SPEC, REF, ID, OWN, SYNC, SEG, SURV, SEC, PLAN, APPLY, PROV)
 * so users can search for them and CI can filter on them.
 */

export type Severity = 'error' | 'warning';

/** A 1-based position, the way editors count. */
export interface Position {
  line: number;
  col: number;
}

export interface SourceRange {
  /** Path relative to the working directory, with forward slashes. */
  file: string;
  start: Position;
  end: Position;
}

/** A path into a spec document, as zod reports it: keys and array indexes. */
export type Path = ReadonlyArray<string | number>;

export interface Diagnostic {
  severity: Severity;
  code: string;
  /** One sentence a CRM operator understands. */
  summary: string;
  /** Why it matters and what to do about it. */
  detail?: string;
  /** Canonical address of the spec or object concerned, e.g. `segment.vip_customers`. */
  address?: string;
  source?: SourceRange;
  path?: Path;
  /**
   * How many findings this diagnostic stands for when it summarises the ones left out ("…and 940 more
   * SPEC004"): output stays bounded while the totals stay true. Absent means one.
   */
  count?: number;
}

/**
 * Keeps the first `limit` diagnostics of each code and severity (in the given order) and replaces the rest
 * by one diagnostic that counts them, located at the first one left out. A spec set with 50,000 typos
 * still prints a screenful, not 50,000 lines, and the totals stay true.
 */
export function summarizeByCode(diagnostics: readonly Diagnostic[], limit = 50): Diagnostic[] {
  const shown = new Map<string, number>();
  const left = new Map<string, { first: Diagnostic; count: number }>();
  const out: Diagnostic[] = [];
  for (const d of diagnostics) {
    const key = `${d.code}|${d.severity}`;
    const n = (shown.get(key) ?? 0) + 1;
    shown.set(key, n);
    if (n <= limit) {
      out.push(d);
      continue;
    }
    const rest = left.get(key);
    if (rest) rest.count += d.count ?? 1;
    else left.set(key, { first: d, count: d.count ?? 1 });
  }
  for (const { first, count } of left.values()) {
    out.push({
      severity: first.severity,
      code: first.code,
      summary: `…and ${count.toLocaleString('en-US')} more ${first.code} like the ${limit} above (not shown).`,
      detail: 'Fix the ones shown and validate again.',
      source: first.source,
      count,
    });
  }
  return out;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

export function countBySeverity(diagnostics: readonly Diagnostic[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.severity === 'error') errors += d.count ?? 1;
    else warnings += d.count ?? 1;
  }
  return { errors, warnings };
}

/** Total order used everywhere diagnostics are printed, so output is reproducible. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  const fa = a.source?.file ?? '';
  const fb = b.source?.file ?? '';
  if (fa !== fb) return fa < fb ? -1 : 1;
  const la = a.source?.start.line ?? 0;
  const lb = b.source?.start.line ?? 0;
  if (la !== lb) return la - lb;
  const ca = a.source?.start.col ?? 0;
  const cb = b.source?.start.col ?? 0;
  if (ca !== cb) return ca - cb;
  if (a.code !== b.code) return a.code < b.code ? -1 : 1;
  return a.summary < b.summary ? -1 : a.summary > b.summary ? 1 : 0;
}

export function formatLocation(range: SourceRange | undefined): string {
  if (!range) return '';
  return `${range.file}:${range.start.line}:${range.start.col}`;
}

export function formatPath(path: Path | undefined): string {
  if (!path || path.length === 0) return '';
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? p : `.${p}`;
  }
  return out;
}

/** Thrown for broken invariants (bugs), never for a user's mistake. Only the CLI entry point catches it. */
export class InternalError extends Error {
  override name = 'InternalError';
}
