/**
 * zod issues → located diagnostics a CRM operator can act on. zod gives a path; the parsed YAML turns it
 * into file:line:col (Terraform's "contextual diagnostics" idea).
 */
import type { z } from 'zod';
import type { Diagnostic, Path } from '../core/diagnostics.ts';
import { formatPath } from '../core/diagnostics.ts';
import { locate, type ParsedDocument } from './parse.ts';
import { looksLikeSecret } from './rules/secrets.ts';
import { didYouMean } from './suggest.ts';

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

export function issuesToDiagnostics(
  issues: readonly Issue[],
  pd: ParsedDocument,
  schema: AnySchema,
  address: string,
  base: Path = [],
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of issues) out.push(...issueToDiagnostics(issue, pd, schema, address, base));
  return out;
}

const SUGGEST_LIMIT = 200;

/** A key that looks like a secret (SEC001 reports it) is never repeated in another message or path. */
const SECRET_KEY_SHOWN = '(a key that looks like a secret)';
const shownKey = (k: string | number) => (typeof k === 'string' && looksLikeSecret(undefined, k) ? SECRET_KEY_SHOWN : k);
const shownPath = (p: Path): Path => p.map(shownKey);

function issueToDiagnostics(issue: Issue, pd: ParsedDocument, schema: AnySchema, address: string, base: Path): Diagnostic[] {
  const path: Path = [...base, ...(issue.path as (string | number)[])];
  const where = formatPath(shownPath(path)) || '(document)';
  const key = [...path].reverse().find((p): p is string => typeof p === 'string');
  const describe = (value: unknown) => describeValue(value, key);
  const diag = (code: string, summary: string, p: Path, isKey = false): Diagnostic => ({
    severity: 'error',
    code,
    summary,
    address,
    path: shownPath(p),
    source: locate(pd, p, { key: isKey }),
  });

  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(schema, path, pd.data);
      const inWhere = where === '(document)' ? 'this spec' : `"${where}"`;
      // Past the first few hundred of one mapping the rest are summarised anyway (summarizeByCode): no
      // "did you mean" for those, which is most of the time 50,000 typos would take.
      return issue.keys.map((k, i) =>
        shownKey(k) === k
          ? diag('SPEC004', `Unknown key "${k}" in ${inWhere}.${i < SUGGEST_LIMIT ? didYouMean(k, known) : ''}`, [...path, k], true)
          : diag('SPEC004', `Unknown key ${SECRET_KEY_SHOWN} in ${inWhere}.`, [...path, k], true),
      );
    }
    case 'invalid_type': {
      // A retired key (declared z.never() with a message saying what replaced it): say that, not "should be never".
      if (issue.expected === 'never' && !/^Invalid input/.test(issue.message)) return [diag('SPEC003', `"${where}": ${issue.message}.`, path)];
      const value = valueAt(pd.data, path);
      if (value === undefined) {
        const parent = path.slice(0, -1);
        return [diag('SPEC005', `Missing required key "${String(path[path.length - 1])}"${parent.length ? ` in "${formatPath(parent)}"` : ''}.`, parent)];
      }
      return [diag('SPEC003', `"${where}" should be ${article(issue.expected)}, found ${describe(value)}.`, path)];
    }
    case 'invalid_value': {
      const value = valueAt(pd.data, path);
      const options = issue.values.map(String);
      if (value === undefined) {
        const parent = path.slice(0, -1);
        return [diag('SPEC005', `Missing required key "${String(path[path.length - 1])}"${parent.length ? ` in "${formatPath(parent)}"` : ''} (one of: ${options.join(', ')}).`, parent)];
      }
      const hint = typeof value === 'string' ? didYouMean(value, options) : '';
      return [diag('SPEC003', `"${where}" must be one of: ${options.join(', ')} (found ${describe(value)}).${hint}`, path)];
    }
    case 'invalid_union': {
      const u = issue as Issue & { options?: unknown[]; discriminator?: string; errors: Issue[][] };
      if (u.options && u.discriminator) {
        const value = valueAt(pd.data, path);
        const options = u.options.map(String);
        if (value === undefined) {
          return [diag('SPEC005', `Missing required key "${String(path[path.length - 1])}" (one of: ${options.join(', ')}).`, path.slice(0, -1))];
        }
        const hint = typeof value === 'string' ? didYouMean(value, options) : '';
        return [diag('SPEC003', `"${where}" must be one of: ${options.join(', ')} (found ${describe(value)}).${hint}`, path)];
      }
      // A plain union: report the alternative that came closest (fewest problems).
      const best = [...u.errors].sort((a, b) => a.length - b.length)[0];
      if (best && best.length > 0) {
        return best.flatMap((i) => issueToDiagnostics(i, pd, schema, address, path));
      }
      return [diag('SPEC003', `"${where}": ${issue.message}.`, path)];
    }
    case 'invalid_format':
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
    case 'custom':
    default: {
      const value = valueAt(pd.data, path);
      const msg = issue.message.replace(/^Invalid input: /, '');
      const shown = value !== undefined && typeof value !== 'object' ? ` (found ${describe(value)})` : '';
      return [diag('SPEC003', `"${where}": ${msg}${shown}.`, path)];
    }
  }
}

function article(expected: string): string {
  const map: Record<string, string> = {
    string: 'text',
    number: 'a number',
    int: 'a whole number',
    boolean: 'true or false',
    object: 'a mapping (key: value pairs)',
    array: 'a list',
    record: 'a mapping (key: value pairs)',
  };
  return map[expected] ?? expected;
}

function describeValue(value: unknown, key?: string): string {
  if (value === null) return 'nothing (null)';
  if (typeof value === 'string' && looksLikeSecret(key, value)) return 'a value that looks like a secret (not shown)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `"${value.length > 60 ? `${value.slice(0, 57)}...` : value}"`;
  return String(value);
}

export function valueAt(data: unknown, path: Path): unknown {
  let cur: unknown = data;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

interface Def {
  type: string;
  shape?: Record<string, AnySchema>;
  innerType?: AnySchema;
  in?: AnySchema;
  getter?: () => AnySchema;
  options?: AnySchema[];
  discriminator?: string;
  valueType?: AnySchema;
  element?: AnySchema;
  values?: unknown[];
}

function defOf(s: AnySchema): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

function unwrap(s: AnySchema): AnySchema {
  for (let i = 0; i < 20; i++) {
    const d = defOf(s);
    if (d.innerType && ['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(d.type)) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else if (d.type === 'lazy' && d.getter) s = d.getter();
    else return s;
  }
  return s;
}

/** The keys an object schema accepts at `path`, following the data to pick union branches. */
export function knownKeysAt(schema: AnySchema, path: Path, data: unknown): string[] {
  const keys = new Set<string>();
  walk(schema, path, data, keys);
  return [...keys];
}

function walk(schema: AnySchema, path: Path, data: unknown, out: Set<string>): void {
  const s = unwrap(schema);
  const d = defOf(s);
  if (d.type === 'union' && d.options) {
    let options = d.options;
    if (d.discriminator && data && typeof data === 'object') {
      const tag = (data as Record<string, unknown>)[d.discriminator];
      const match = options.filter((o) => {
        const od = defOf(unwrap(o));
        const lit = od.shape?.[d.discriminator!];
        return lit ? (defOf(unwrap(lit)).values ?? []).includes(tag) : false;
      });
      if (match.length > 0) options = match;
    }
    for (const o of options) walk(o, path, data, out);
    return;
  }
  if (path.length === 0) {
    if (d.type === 'object' && d.shape) for (const k of Object.keys(d.shape)) out.add(k);
    return;
  }
  const [head, ...rest] = path;
  const child = data && typeof data === 'object' ? (data as Record<string | number, unknown>)[head!] : undefined;
  if (d.type === 'object' && d.shape && typeof head === 'string' && d.shape[head]) walk(d.shape[head]!, rest, child, out);
  else if (d.type === 'record' && d.valueType) walk(d.valueType, rest, child, out);
  else if (d.type === 'array' && d.element) walk(d.element, rest, child, out);
}
