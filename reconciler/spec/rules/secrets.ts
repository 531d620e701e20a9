import type { Path, SourceRange } from '../../core/diagnostics.ts';
import { addressFor, sorted, type Located } from '../model.ts';
import { locate, rangeFromOffsets, type ParsedDocument } from '../parse.ts';
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
  [/\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^@\s/]+@/i, 'a URL with an embedded password'],
  // A webhook or API URL that authenticates by query string: the token travels with every copy of the URL.
  [/[?&](access_token|id_token|refresh_token|token|api_?key|apikey|key|secret|client_secret|password|passwd|pass|pwd|sig|signature|auth|code)=[^&#\s]{4,}/i, 'a token in a URL query string'],
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

interface Hit {
  /** Where the secret is, as a path that never includes the secret itself (a key is not in its own path). */
  path: Path;
  what: string;
  source?: SourceRange;
}

function scan(pd: ParsedDocument, value: unknown, path: Path, out: Hit[]): void {
  if (typeof value === 'string') {
    const key = [...path].reverse().find((p): p is string => typeof p === 'string');
    const what = looksLikeSecret(key, value);
    if (what) out.push({ path, what });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => scan(pd, v, [...path, i], out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      // A secret pasted as a key (`sk_live_…: true`) is as leaked as one pasted as a value.
      const what = looksLikeSecret(undefined, k);
      if (what) out.push({ path, what: `${what} (as a key)`, source: locate(pd, [...path, k], { key: true }) });
      else scan(pd, v, [...path, k], out);
    }
  }
}

const COMMENT_PAIR = /([A-Za-z_][\w-]*)\s*[:=]\s*["']?([^\s"']+)/g;

/** Secrets in comments: a commented-out `api_key: …` line is still in Git. */
function scanComments(pd: ParsedDocument, out: Hit[]): void {
  for (const c of pd.comments) {
    const body = c.line ? c.text : c.text.replace(/^#/, '');
    let what: string | undefined;
    for (const m of body.matchAll(COMMENT_PAIR)) {
      what = looksLikeSecret(m[1], m[2]!);
      if (what) break;
    }
    what ??= looksLikeSecret(undefined, body) ?? body.split(/\s+/).map((w) => looksLikeSecret(undefined, w)).find(Boolean);
    if (what) out.push({ path: [], what: `${what} (${c.line ? 'in a document that is not valid YAML' : 'in a comment'})`, source: rangeFromOffsets(pd.file, pd.lineCounter, c.offset, c.offset + c.text.length) });
  }
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** True for an http:// URL to anything but this machine (the sandbox runs on loopback). */
export function isPlainHttpOffLoopback(url: string): boolean {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return u.protocol === 'http:' && !LOOPBACK.test(u.hostname);
}

export const secretRules: Rule[] = [
  {
    code: 'SEC001',
    family: 'secrets',
    severity: 'error',
    locked: true,
    title: 'A literal key or token in a spec',
    harm: 'Specs live in Git and in PR comments: a secret written into one (even in a comment, a key or a URL query) is leaked to everyone with read access, forever.',
    check(model) {
      const out: Finding[] = [];
      // Every parsed document, valid or not: a leaked secret is leaked whatever else is wrong.
      for (const pd of model.documents) {
        const data = pd.data as Record<string, unknown> | null;
        const specKind = typeof data?.kind === 'string' ? data.kind : 'spec';
        const name = typeof data?.name === 'string' ? data.name : `document ${pd.index + 1}`;
        const spec: Located<unknown> = { kind: specKind, name, address: addressFor(specKind, name), spec: data, pd };
        const hits: Hit[] = [];
        scan(pd, pd.data, [], hits);
        scanComments(pd, hits);
        for (const h of hits) {
          out.push({
            spec,
            path: h.path,
            source: h.source,
            summary: `This looks like ${h.what} written into the spec.`,
            detail: 'Put secrets in environment variables and reference them by name (e.g. url_env: WAREHOUSE_URL). Rotate this secret: it is in Git history.',
          });
        }
      }
      return out;
    },
  },
  {
    code: 'SEC002',
    family: 'secrets',
    severity: 'error',
    title: 'A webhook URL over plain http',
    harm: 'Qualtrics posts every response to the webhook: over http, answers and the identifiers that tie them to a person cross the internet unencrypted.',
    check(model) {
      const out: Finding[] = [];
      const ws = model.workspace;
      if (!ws) return out;
      const envs = ws.spec.environments;
      const plain = Object.keys(envs)
        .sort()
        .filter((e) => {
          const url = envs[e]?.qualtrics?.responses_webhook_url;
          return url !== undefined && isPlainHttpOffLoopback(url);
        });
      for (const e of plain) {
        out.push({
          spec: ws,
          path: ['environments', e, 'qualtrics', 'responses_webhook_url'],
          summary: `The responses webhook of environment "${e}" uses http:// to a host that is not this machine.`,
          detail: 'Use an https:// URL (http:// is accepted only for 127.0.0.1 or localhost, where the sandbox runs).',
        });
      }
      for (const t of sorted(model.surveyTargets)) {
        if (!t.spec.responses?.webhook) continue;
        const used = plain.filter((e) => !t.spec.environments || t.spec.environments.includes(e));
        if (used.length === 0) continue;
        out.push({
          spec: t,
          path: ['responses', 'webhook'],
          summary: `Responses of "${t.name}" would be delivered over plain http in environment${used.length > 1 ? 's' : ''} ${used.join(', ')}.`,
          detail: 'Give those environments an https:// responses_webhook_url.',
        });
      }
      return out;
    },
  },
];
