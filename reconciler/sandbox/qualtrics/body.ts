/**
 * Strict request-body reading. Qualtrics parameter names are case sensitive and unknown JSON keys are
 * refused ("Unexpected json key provided: …", RP_9), so a client's typo fails here exactly as it would
 * against the real API instead of being silently ignored.
 */
import type { SandboxRequest } from '../common/types.ts';
import { ErrorCode, QualtricsApiError, invalidParam, missingParam } from './envelope.ts';

export function parseJsonBody(req: SandboxRequest): Record<string, unknown> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (!type.startsWith('application/json')) {
    throw new QualtricsApiError(400, ErrorCode.malformedBody, 'Invalid request. Content-Type must be application/json.');
  }
  let value: unknown;
  try {
    value = JSON.parse(req.body.toString('utf8'));
  } catch {
    throw new QualtricsApiError(400, ErrorCode.malformedBody, 'Invalid request. The body is not valid JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new QualtricsApiError(400, ErrorCode.malformedBody, 'Invalid request. The body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function isEmail(value: string): boolean {
  return EMAIL.test(value);
}

/** ISO-8601 with a zone (`2024-12-01T00:00:00Z`, `…+02:00`, optional fraction). */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export function parseIsoDateTime(value: string): number | undefined {
  if (!ISO_DATE_TIME.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Reads one JSON object, naming offending fields by their dotted path. */
export class BodyReader {
  constructor(
    readonly value: Record<string, unknown>,
    private readonly path = '',
  ) {}

  private name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.value[key] !== undefined;
  }

  /** Refuses keys outside `allowed`. */
  allowOnly(allowed: readonly string[]): this {
    for (const key of Object.keys(this.value)) {
      if (!allowed.includes(key)) {
        throw new QualtricsApiError(400, ErrorCode.unexpectedKey, `Unexpected json key provided: ${this.name(key)}`);
      }
    }
    return this;
  }

  requiredString(key: string, opts: { maxLength?: number } = {}): string {
    const v = this.optionalString(key, opts);
    if (v === undefined) throw missingParam(this.name(key));
    return v;
  }

  /** Undefined when absent or null. Empty strings are kept (the API accepts `"language": ""`). */
  optionalString(key: string, opts: { maxLength?: number } = {}): string | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw invalidParam(this.name(key), 'expected a string');
    if (opts.maxLength !== undefined && v.length > opts.maxLength) {
      throw invalidParam(this.name(key), `longer than ${opts.maxLength} characters`);
    }
    return v;
  }

  optionalEmail(key: string): string | undefined {
    const v = this.optionalString(key);
    if (v !== undefined && v !== '' && !isEmail(v)) throw invalidParam(this.name(key), 'not an email address');
    return v;
  }

  optionalBoolean(key: string): boolean | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw invalidParam(this.name(key), 'expected a boolean');
    return v;
  }

  optionalInteger(key: string, opts: { min?: number } = {}): number | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidParam(this.name(key), 'expected an integer');
    if (opts.min !== undefined && v < opts.min) throw invalidParam(this.name(key), `must be at least ${opts.min}`);
    return v;
  }

  /** An ISO-8601 date-time with zone; returns both the text and epoch ms. */
  optionalDateTime(key: string): { text: string; ms: number } | undefined {
    const text = this.optionalString(key);
    if (text === undefined) return undefined;
    const ms = parseIsoDateTime(text);
    if (ms === undefined) throw invalidParam(this.name(key), 'expected an ISO-8601 date-time such as 2024-12-01T00:00:00Z');
    return { text, ms };
  }

  requiredDateTime(key: string): { text: string; ms: number } {
    const v = this.optionalDateTime(key);
    if (v === undefined) throw missingParam(this.name(key));
    return v;
  }

  optionalObject(key: string): BodyReader | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw invalidParam(this.name(key), 'expected an object');
    return new BodyReader(v as Record<string, unknown>, this.name(key));
  }

  requiredObject(key: string): BodyReader {
    const v = this.optionalObject(key);
    if (v === undefined) throw missingParam(this.name(key));
    return v;
  }

  /**
   * A flat map of string values (embedded data). Non-string values are refused rather than coerced: a
   * client that stringifies works against the real API whichever way it coerces.
   */
  optionalStringMap(key: string): Record<string, string> | undefined {
    const obj = this.optionalObject(key);
    if (!obj) return undefined;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj.value)) {
      if (typeof v !== 'string') throw invalidParam(`${this.name(key)}.${k}`, 'embedded data values must be strings');
      out[k] = v;
    }
    return out;
  }

  optionalStringArray(key: string): string[] | undefined {
    const v = this.value[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      throw invalidParam(this.name(key), 'expected an array of strings');
    }
    return v as string[];
  }

  requiredArray(key: string): unknown[] {
    const v = this.value[key];
    if (v === undefined || v === null) throw missingParam(this.name(key));
    if (!Array.isArray(v)) throw invalidParam(this.name(key), 'expected an array');
    return v;
  }
}

/** Reads a query parameter that must be `true` or `false` when present. */
export function queryBoolean(url: URL, name: string): boolean | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw invalidParam(name, 'expected true or false');
}
