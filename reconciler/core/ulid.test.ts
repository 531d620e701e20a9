import { describe, expect, it } from 'vitest';
import { deterministicUlid, generateUlid, isUlid } from './ulid.ts';

describe('ulid', () => {
  it('generates sortable ULIDs', () => {
    const a = generateUlid(1_700_000_000_000, new Uint8Array(10));
    const b = generateUlid(1_700_000_000_001, new Uint8Array(10));
    expect(a).toHaveLength(26);
    expect(a < b).toBe(true);
    expect(generateUlid(0, new Uint8Array(10).fill(255))).toBe('0000000000ZZZZZZZZZZZZZZZZ');
    expect(isUlid(a)).toBe(true);
    expect(deterministicUlid('order:A1', 1_700_000_000_000)).toBe(deterministicUlid('order:A1', 1_700_000_000_000));
    expect(deterministicUlid('order:A1', 1_700_000_000_000)).not.toBe(deterministicUlid('order:A2', 1_700_000_000_000));
    expect(isUlid(deterministicUlid('x', Date.UTC(2030, 0, 1)))).toBe(true);
  });
});
