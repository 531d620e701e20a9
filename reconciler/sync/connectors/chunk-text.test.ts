import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkText, encodingName, hasInvalidBytes, TextDecodeError } from './chunk-text.ts';

/** Decodes `bytes` fed in the pieces `cuts` makes, as the parsers feed their reads. */
function decode(bytes: Uint8Array, cuts: number[] = [], encoding?: string): { text: string; decoder: ChunkText } {
  const decoder = new ChunkText(encoding);
  let text = '';
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    text += decoder.next(bytes.subarray(from, cut));
    from = cut;
  }
  text += decoder.next(bytes.subarray(from));
  return { text: text + decoder.end(), decoder };
}

const cutsIn = (length: number) => fc.array(fc.integer({ min: 0, max: length }), { maxLength: 10 });

describe('ChunkText decoding', () => {
  it('decodes valid UTF-8 exactly, whatever the chunking, and sees nothing invalid (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'é', '€', '😀', '\uFFFD', '\n', ',', '"') }).chain((s) => {
          const bytes = new TextEncoder().encode(s);
          return fc.record({ cuts: cutsIn(bytes.length) }).map(({ cuts }) => ({ s, bytes, cuts }));
        }),
        ({ s, bytes, cuts }) => {
          const { text, decoder } = decode(bytes, cuts);
          // A U+FEFF at the very start is the byte-order mark and is dropped.
          expect(text).toBe(s);
          expect(decoder.invalidSeen).toBe(false);
          expect(hasInvalidBytes(text)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gives the same text for any bytes however they are cut, and marks exactly the invalid input (property)', () => {
    // Bytes that open with a UTF-16 byte-order mark are UTF-16 input, tested apart.
    const notUtf16 = fc.uint8Array({ maxLength: 40 }).filter((b) => !((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)));
    fc.assert(
      fc.property(
        notUtf16.chain((bytes) => fc.record({ cuts: cutsIn(bytes.length) }).map(({ cuts }) => ({ bytes, cuts }))),
        ({ bytes, cuts }) => {
          const whole = decode(bytes);
          expect(decode(bytes, cuts).text).toBe(whole.text);
          const strict = strictUtf8(bytes);
          // Valid input decodes as a strict decoder (which drops a leading mark too) decodes it.
          if (strict !== undefined) expect(whole.text).toBe(strict);
          expect(hasInvalidBytes(whole.text)).toBe(strict === undefined);
          // Never a replacement character that was not in the input.
          expect(whole.text.includes('\uFFFD')).toBe(Buffer.from(bytes).includes(Buffer.from('\uFFFD')));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('escapes the bytes of a Latin-1 line instead of replacing them with U+FFFD', () => {
    const { text, decoder } = decode(Buffer.concat([Buffer.from('ok,1\njos'), Buffer.from([0xe9]), Buffer.from('@example.com,2\n')]));
    expect(decoder.invalidSeen).toBe(true);
    const [first, second] = text.split('\n');
    expect(hasInvalidBytes(first!)).toBe(false);
    expect(hasInvalidBytes(second!)).toBe(true);
    expect(second).toBe('jos\uDCE9@example.com,2');
    expect(text).not.toContain('\uFFFD');
  });

  it('refuses overlong forms, encoded surrogates and code points past U+10FFFF', () => {
    for (const bad of [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]]) {
      expect(hasInvalidBytes(decode(Uint8Array.from(bad)).text)).toBe(true);
    }
  });

  it.each<[string, number[], string | undefined]>([
    ['UTF-16LE with its byte-order mark', [0xff, 0xfe], undefined],
    ['UTF-16BE with its byte-order mark', [0xfe, 0xff], undefined],
    ['UTF-16LE with its byte-order mark, over a declared latin1', [0xff, 0xfe], 'latin1'],
  ])('recognises %s', (_name, mark, declared) => {
    const le = mark[0] === 0xff;
    const body = Buffer.from('id,email\n1,josé@example.com 😀\n', 'utf16le');
    if (!le) body.swap16();
    const bytes = Buffer.concat([Buffer.from(mark), body]);
    for (const cuts of [[], [1], [3], [2, 5, 6, 7]]) {
      const { text, decoder } = decode(bytes, cuts, declared);
      expect(text).toBe('id,email\n1,josé@example.com 😀\n');
      expect(decoder.encoding).toBe(le ? 'utf-16le' : 'utf-16be');
    }
  });

  it('decodes a declared single-byte encoding, and a UTF-8 mark still wins over it', () => {
    expect(decode(Buffer.from('id\njosé\n', 'latin1'), [3], 'latin1').text).toBe('id\njosé\n');
    expect(decode(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('josé')]), [], 'latin1').text).toBe('josé');
  });

  it('throws a TextDecodeError for bytes the declared encoding cannot decode (an odd byte in UTF-16)', () => {
    expect(() => decode(Buffer.from([0x61, 0x00, 0x62]), [], 'utf-16le')).toThrow(TextDecodeError);
  });

  it('names the encodings TextDecoder supports, and only those', () => {
    expect(encodingName('latin1')).toBe('windows-1252');
    expect(encodingName(' UTF-16LE ')).toBe('utf-16le');
    expect(encodingName('ebcdic')).toBeUndefined();
  });
});

/** An independent strict decoder: TextDecoder with fatal set throws on any invalid sequence. */
function strictUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
