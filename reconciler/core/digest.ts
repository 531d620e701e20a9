/** Canonical JSON (keys sorted recursively) and its sha256: equal data gives equal bytes and digests. */
import { createHash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit, recursively; 2-space indent; no trailing newline.
 * Values follow `JSON.stringify` (`toJSON` is honoured, `undefined` properties are omitted, `undefined` in
 * arrays and non-finite numbers become `null`).
 *
 * Written out by hand rather than by `JSON.stringify` on a sorted copy: engines always enumerate
 * integer-like keys ("10", "2") in numeric order first, which would break the sort the digest relies on.
 * Throws a TypeError on cycles, bigints and a top-level value JSON cannot represent (a digest of
 * "nothing" would be a bug upstream).
 */
export function canonicalJson(value: unknown): string {
  const out = write(value, '', '', new Set());
  if (out === undefined) throw new TypeError(`canonicalJson: ${typeof value} has no JSON representation`);
  return out;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function digestOf(value: unknown): string {
  return sha256(canonicalJson(value));
}

const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function write(raw: unknown, key: string, indent: string, stack: Set<object>): string | undefined {
  let value = raw;
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(k: string): unknown }).toJSON(key);
  }
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('canonicalJson: BigInt has no JSON representation');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'object':
      break;
  }
  if (value === null) return 'null';
  const obj = value as object;
  if (stack.has(obj)) throw new TypeError('canonicalJson: cyclic structure');
  stack.add(obj);
  const inner = `${indent}  `;
  let out: string;
  if (Array.isArray(obj)) {
    const items = obj.map((item, i) => write(item, String(i), inner, stack) ?? 'null');
    out = items.length === 0 ? '[]' : `[\n${inner}${items.join(`,\n${inner}`)}\n${indent}]`;
  } else {
    const record = obj as Record<string, unknown>;
    const members: string[] = [];
    for (const k of Object.keys(record).sort(compareKeys)) {
      const v = write(record[k], k, inner, stack);
      if (v !== undefined) members.push(`${JSON.stringify(k)}: ${v}`);
    }
    out = members.length === 0 ? '{}' : `{\n${inner}${members.join(`,\n${inner}`)}\n${indent}}`;
  }
  stack.delete(obj);
  return out;
}
