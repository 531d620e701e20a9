import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { clearSecretsForTest, MIN_PARTIAL_CHARS, redact, redactAndTruncate, registerSecret } from './redact.ts';

afterEach(() => clearSecretsForTest());

describe('redact', () => {
  it('masks a registered secret wherever it appears', () => {
    registerSecret('tok_live_0123456789abcdef');
    expect(redact('auth failed for tok_live_0123456789abcdef (twice: tok_live_0123456789abcdef)')).toBe(
      'auth failed for [redacted] (twice: [redacted])',
    );
  });

  it('masks the trimmed value of an environment value that ends in whitespace or a newline', () => {
    registerSecret('tok_live_0123456789abcdef\n');
    registerSecret('  other-secret-value \t\r\n');
    const out = redact('header "Bearer tok_live_0123456789abcdef" is invalid; other-secret-value');
    expect(out).not.toContain('tok_live');
    expect(out).not.toContain('other-secret');
  });

  it('masks the URL-encoded and JSON-escaped forms of a secret', () => {
    registerSecret('p@ss/wo"rd+=1234');
    expect(redact(`?token=${encodeURIComponent('p@ss/wo"rd+=1234')}`)).toBe('?token=[redacted]');
    expect(redact(JSON.stringify({ token: 'p@ss/wo"rd+=1234' }))).toBe('{"token":"[redacted]"}');
  });

  it('masks a secret that contains another registered one as a whole', () => {
    registerSecret('abcdefgh');
    registerSecret('xxabcdefghyy');
    expect(redact('xxabcdefghyy')).toBe('[redacted]');
  });

  it('masks the user info of any URL, registered or not', () => {
    expect(redact('connect postgres://app:s3cr3t@db.internal:5432/warehouse failed')).toBe(
      'connect postgres://[redacted]@db.internal:5432/warehouse failed',
    );
    expect(redact('GET http://user:pa@ss@127.0.0.1:8080/x')).toBe('GET http://[redacted]@127.0.0.1:8080/x');
    expect(redact('https://token@example.com/path')).toBe('https://[redacted]@example.com/path');
  });

  it('leaves URLs without user info and e-mail-like query values alone', () => {
    expect(redact('GET http://127.0.0.1:8080/v1/x?email=a@b.test')).toBe('GET http://127.0.0.1:8080/v1/x?email=a@b.test');
    expect(redact('see https://docs.example.com and write to ops@example.com')).toBe(
      'see https://docs.example.com and write to ops@example.com',
    );
  });

  it('masks the head of a secret left at the end by a truncation made before redaction', () => {
    const secret = 'sk_0123456789abcdefghijklmnopqrstuv'; // 34 characters
    registerSecret(secret);
    const body = `{"error":"bad key ${secret}"}`;
    const cut = body.slice(0, body.indexOf(secret) + 23);
    expect(redact(cut)).toBe('{"error":"bad key [redacted]');
    expect(redact(`${cut}…`)).toBe('{"error":"bad key [redacted]…');
    expect(redact(secret.slice(11) + ' trailing')).toBe('[redacted] trailing');
  });

  it('leaves an ordinary word alone that a secret happens to start with', () => {
    registerSecret('sandbox-track-key');
    registerSecret('password-123456');
    expect(redact('Using the embedded sandbox')).toBe('Using the embedded sandbox');
    expect(redact('check the password\n')).toBe('check the password\n');
    expect(redact('key sandbox-track-key')).toBe('key [redacted]');
    expect(redact('cut at sandbox-tr…')).toBe('cut at [redacted]…');
  });

  it('redactAndTruncate redacts before it cuts', () => {
    const secret = 'sk_0123456789abcdefghijklmnopqrstuv';
    registerSecret(secret);
    const text = `${'x'.repeat(480)} ${secret} ${'y'.repeat(100)}`;
    const out = redactAndTruncate(text, 500);
    expect(out).not.toContain(secret.slice(0, MIN_PARTIAL_CHARS));
    expect(out.endsWith('…')).toBe(true);
  });

  // Secrets from one alphabet and the surrounding text from another, so any run of secret characters in the
  // output can only have come from the secret (and "[redacted]" shares no character with it).
  const secretArb = fc.string({ unit: fc.constantFrom(...'ABCDEFGHJKLMNPQRSTUVWXYZ0123456789_-'.split('')), minLength: 8, maxLength: 48 });
  const textArb = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz .,:;"{}\n\t'.split('')), maxLength: 200 });
  const leaks = (shown: string, secret: string, allowWords = false) => {
    let out = shown;
    if (allowWords) {
      // A whole leading (or trailing) word of letters that the secret continues with a separator is left
      // alone as ordinary text (see redact.ts): take it off the end (or start) where a cut would leave it.
      const head = /^[A-Za-z]+(?=[^A-Za-z0-9])/.exec(secret)?.[0];
      const tail = /(?<=[^A-Za-z0-9])[A-Za-z]+$/.exec(secret)?.[0];
      const marker = /(?:…|\.{3})?\s*$/.exec(out)!.index;
      if (head && head.length >= MIN_PARTIAL_CHARS && out.slice(0, marker).endsWith(head)) out = out.slice(0, marker - head.length);
      if (tail && tail.length >= MIN_PARTIAL_CHARS && out.startsWith(tail)) out = out.slice(tail.length);
    }
    for (let k = MIN_PARTIAL_CHARS; k <= secret.length; k++) if (out.includes(secret.slice(0, k))) return true;
    for (let k = MIN_PARTIAL_CHARS; k <= secret.length; k++) if (out.includes(secret.slice(secret.length - k))) return true;
    return false;
  };

  it('property: a registered secret anywhere in a text never shows, whole or cut, however the text is truncated', () => {
    fc.assert(
      fc.property(secretArb, textArb, textArb, fc.nat(), fc.constantFrom('', '\n', ' ', '\r\n', '\t '), (secret, before, after, cutSeed, ws) => {
        clearSecretsForTest();
        registerSecret(secret + ws);
        const text = before + secret + after;
        const max = cutSeed % (text.length + 1);
        expect(leaks(redactAndTruncate(text, max), secret)).toBe(false);
        // Truncating first (what a careless caller does) still leaves no 6+ character piece behind, but
        // for a leading word of letters, which is left alone as ordinary text.
        expect(leaks(redact(text.slice(0, max)), secret, true)).toBe(false);
        expect(leaks(redact(`${text.slice(0, max)}…`), secret, true)).toBe(false);
        expect(leaks(redact(text.slice(max)), secret, true)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
