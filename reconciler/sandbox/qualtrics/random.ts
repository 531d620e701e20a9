/**
 * Deterministic id and request-id generation. The generator's whole state is one uint32, so it is part
 * of the emulator snapshot: a restored sandbox keeps producing the same ids it would have produced.
 */

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Length of the random part of Qualtrics ids as seen on the wire (`SV_ebdf20QralHTzQF`). */
const ID_BODY_LENGTH = 15;

export class SeededRandom {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  get state(): number {
    return this.s;
  }

  set state(value: number) {
    this.s = value >>> 0;
  }

  /** mulberry32: tiny, fast and good enough for ids and fault sampling (not for cryptography). */
  nextUint32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** A Qualtrics-style id: prefix plus 15 alphanumerics, e.g. `CID_3kZ8cTqQ4rPbUuG`. */
  id(prefix: string): string {
    let body = '';
    for (let i = 0; i < ID_BODY_LENGTH; i++) body += ID_ALPHABET[this.nextUint32() % ID_ALPHABET.length];
    return `${prefix}_${body}`;
  }

  /** An RFC 4122 version-4 UUID, the format of `meta.requestId` and export file ids. */
  uuid(): string {
    const bytes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const n = this.nextUint32();
      bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
    }
    bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
    bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
    const hex = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}
