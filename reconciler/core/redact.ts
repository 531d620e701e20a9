/**
 * Secrets come only from the environment and must never reach a log, an error message or a PR comment.
 * Every value registered here is masked wherever text is redacted, and so is the user-info part of any
 * URL (`postgres://user:password@host` → `postgres://[redacted]@host`), registered or not.
 */
const MASK = '[redacted]';
/** Shorter values are too likely to occur by chance in ordinary text to be masked everywhere. */
const MIN_SECRET_CHARS = 4;
/**
 * A piece of a secret cut off at either end of a text (by a truncation done before redaction) is masked
 * from this length on: long enough not to mask ordinary words, short enough that what is left shown is
 * of no use to an attacker.
 */
export const MIN_PARTIAL_CHARS = 6;

// Longest first, so a secret that contains another is masked whole rather than in pieces.
let secrets: string[] = [];

/**
 * Registers a secret and the forms it takes on its way out: an environment value often carries a
 * trailing newline (`echo … >> .env`, a pasted token) that the client trims before use, so the trimmed
 * value is the one that would leak; it may also appear URL-encoded or JSON-escaped in a request or a body.
 */
export function registerSecret(value: string | undefined): void {
  if (!value) return;
  const trimmed = value.trim();
  const forms = new Set([value, trimmed]);
  if (trimmed) {
    forms.add(encodeURIComponent(trimmed));
    forms.add(JSON.stringify(trimmed).slice(1, -1));
  }
  let added = false;
  for (const f of forms) {
    if (f.trim().length >= MIN_SECRET_CHARS && !secrets.includes(f)) {
      secrets.push(f);
      added = true;
    }
  }
  if (added) secrets = [...secrets].sort((a, b) => b.length - a.length);
}

// Scheme, then user info up to the last `@` before the host (a raw `@` in a password is common).
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*(?:@[^\s/?#@]*)*@(?=[^\s@])/gi;

export function redact(text: string): string {
  let out = text.replace(URL_USERINFO, `$1${MASK}@`);
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  return maskCutEnds(out);
}

/**
 * Redacts, then shortens to at most `max` characters (plus an ellipsis). Redacting first matters: cutting
 * first can leave the head of a secret at the end, which no longer matches the whole secret.
 */
export function redactAndTruncate(text: string, max: number): string {
  const clean = redact(text);
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/**
 * A head of a secret at the end of the text (or its tail at the start) is what a truncation made before
 * redaction leaves behind. A trailing ellipsis or dots are looked through, as truncations add them.
 *
 * A piece that is a whole word of letters, which the secret continues with a separator, is left alone:
 * "sandbox" in "…on the embedded sandbox" is the head of `sandbox-track-key`, and "password" the head
 * of `password-123`, yet both are ordinary words; masking them would garble messages, and a word is
 * not what makes a secret hard to guess.
 */
function maskCutEnds(text: string): string {
  let out = text;
  for (const s of secrets) {
    const tailAt = /(?:…|\.{3})?\s*$/.exec(out)!.index;
    const body = out.slice(0, tailAt);
    for (let k = Math.min(s.length - 1, body.length); k >= MIN_PARTIAL_CHARS; k--) {
      const piece = s.slice(0, k);
      if (body.endsWith(piece) && !isWordAtSeparator(piece, s[k]!)) {
        out = `${body.slice(0, body.length - k)}${MASK}${out.slice(tailAt)}`;
        break;
      }
    }
    for (let k = Math.min(s.length - 1, out.length); k >= MIN_PARTIAL_CHARS; k--) {
      const piece = s.slice(s.length - k);
      if (out.startsWith(piece) && !isWordAtSeparator(piece, s[s.length - k - 1]!)) {
        out = `${MASK}${out.slice(k)}`;
        break;
      }
    }
  }
  return out;
}

function isWordAtSeparator(piece: string, next: string): boolean {
  return /^[A-Za-z]+$/.test(piece) && !/[A-Za-z0-9]/.test(next);
}

/** For tests: forget every registered secret. */
export function clearSecretsForTest(): void {
  secrets = [];
}
