import type { Path } from '../../core/diagnostics.ts';
import type { Located } from '../model.ts';
import type { Finding, Rule } from './rule.ts';

const SECRET_KEY = /(api_?key|apikey|token|secret|password|passwd|credential|private_?key|auth)/i;
const ENV_NAME = /^[A-Z][A-Z0-9_]*$/;
const PATTERNS: Array<[RegExp, string]> = [
  [/\b(sk|rk|pk)_(live|test)_[A-Za-z0-9]{10,}/, 'an API secret key'],
  [/\bsa_live_[A-Za-z0-9_-]{8,}/, 'a Customer.io service-account token'],
  [/\bgh[pousr]_[A-Za-z0-9]{20,}/, 'a GitHub token'],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/\bAKIA[0-9A-Z]{16}\b/, 'an AWS access key'],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
  [/\bBearer\s+[A-Za-z0-9._~+/-]{16,}/, 'a bearer token'],
  [/\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^@\s/]+@/i, 'a URL with an embedded password'],
];
// Ids that look random but are not secrets: Qualtrics ids (SV_, ML_, POOL_, …).
const KNOWN_IDS = /^[A-Z]{2,6}_[A-Za-z0-9]{6,24}$/;

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** What kind of secret a value looks like, or undefined. Exported for tests. */
export function looksLikeSecret(key: string | undefined, value: string): string | undefined {
  for (const [re, what] of PATTERNS) if (re.test(value)) return what;
  const token = value.trim();
  if (key && SECRET_KEY.test(key) && !key.endsWith('_env') && token.length >= 8 && !ENV_NAME.test(token) && !/\s/.test(token)) {
    return 'a credential';
  }
  if (token.length >= 32 && !/\s/.test(token) && !KNOWN_IDS.test(token) && /^[A-Za-z0-9+/=_-]+$/.test(token) &&
      /\d/.test(token) && /[A-Za-z]/.test(token) && entropy(token) >= 4) {
    return 'a random-looking key or token';
  }
  return undefined;
}

function scan(value: unknown, path: Path, out: Array<{ path: Path; what: string }>): void {
  if (typeof value === 'string') {
    const key = [...path].reverse().find((p): p is string => typeof p === 'string');
    const what = looksLikeSecret(key, value);
    if (what) out.push({ path, what });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => scan(v, [...path, i], out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) scan(v, [...path, k], out);
  }
}

export const secretRules: Rule[] = [
  {
    code: 'SEC001',
    family: 'secrets',
    severity: 'error',
    title: 'A literal key or token in a spec',
    harm: 'Specs live in Git and in PR comments: a secret written into one is leaked to everyone with read access, forever.',
    check(model) {
      const out: Finding[] = [];
      // Every parsed document, valid or not: a leaked secret is leaked whatever else is wrong.
      for (const pd of model.documents) {
        const data = pd.data as Record<string, unknown> | null;
        const kind = typeof data?.kind === 'string' ? data.kind : 'spec';
        const name = typeof data?.name === 'string' ? data.name : `document ${pd.index + 1}`;
        const spec: Located<unknown> = { kind, name, address: `${kind.toLowerCase()}.${name}`, spec: data, pd };
        const hits: Array<{ path: Path; what: string }> = [];
        scan(pd.data, [], hits);
        for (const h of hits) {
          out.push({
            spec,
            path: h.path,
            summary: `This looks like ${h.what} written into the spec.`,
            detail: 'Put secrets in environment variables and reference them by name (e.g. url_env: WAREHOUSE_URL). Rotate this secret: it is in Git history.',
          });
        }
      }
      return out;
    },
  },
];
