import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QualtricsApiError } from './envelope.ts';
import { decodeSkipToken, encodeSkipToken, nextPageUrl, readPageRequest, takePage } from './pagination.ts';

describe('skip tokens', () => {
  it('round-trip for their own collection and are refused by another', () => {
    const token = encodeSkipToken('mlc:CG_1', 17);
    expect(decodeSkipToken(token, 'mlc:CG_1')).toBe(17);
    expect(() => decodeSkipToken(token, 'mlc:CG_2')).toThrow(QualtricsApiError);
    expect(() => decodeSkipToken('%%%', 'mlc:CG_1')).toThrow(QualtricsApiError);
    expect(() => decodeSkipToken(Buffer.from('{"c":"mlc:CG_1","s":-1}').toString('base64url'), 'mlc:CG_1')).toThrow(QualtricsApiError);
  });

  it('nextPage keeps the other query parameters and drops the legacy offset', () => {
    const url = new URL('http://127.0.0.1:1/API/v3/distributions?surveyId=SV_1&pageSize=2&offset=4');
    const next = new URL(nextPageUrl(url, 'dist:SV_1', 9) ?? '');
    expect(next.searchParams.get('surveyId')).toBe('SV_1');
    expect(next.searchParams.get('pageSize')).toBe('2');
    expect(next.searchParams.has('offset')).toBe(false);
    expect(decodeSkipToken(next.searchParams.get('skipToken') ?? '', 'dist:SV_1')).toBe(9);
    expect(nextPageUrl(url, 'dist:SV_1', null)).toBeNull();
  });

  it('clamps page sizes to the maximum and refuses malformed ones', () => {
    const req = (q: string) => readPageRequest(new URL(`http://h/x?${q}`), 'c', { defaultSize: 50, maxSize: 50 });
    expect(req('').pageSize).toBe(50);
    expect(req('pageSize=7').pageSize).toBe(7);
    expect(req('pageSize=500').pageSize).toBe(50);
    expect(() => req('pageSize=0')).toThrow(QualtricsApiError);
    expect(() => req('pageSize=-3')).toThrow(QualtricsApiError);
    expect(() => req('pageSize=2.5')).toThrow(QualtricsApiError);
  });
});

describe('takePage', () => {
  it('visits every item exactly once, in order, for any collection and page size', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 10_000 }), { maxLength: 200 }), fc.integer({ min: 1, max: 60 }), (seqs, pageSize) => {
        const items = [...seqs].sort((a, b) => a - b).map((seq) => ({ seq }));
        const seen: number[] = [];
        let afterSeq = 0;
        for (let guard = 0; guard <= items.length + 1; guard++) {
          const page = takePage(items, { pageSize, afterSeq, offset: 0 });
          seen.push(...page.items.map((i) => i.seq));
          if (page.nextAfterSeq === null) break;
          expect(page.items).toHaveLength(pageSize);
          afterSeq = page.nextAfterSeq;
        }
        expect(seen).toEqual(items.map((i) => i.seq));
      }),
    );
  });
});
