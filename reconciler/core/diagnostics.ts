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
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

export function countBySeverity(diagnostics: readonly Diagnostic[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.severity === 'error') errors++;
    else warnings++;
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
