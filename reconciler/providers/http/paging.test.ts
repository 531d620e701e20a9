import { describe, expect, it } from 'vitest';
import { followPages } from './paging.ts';

const collect = async <T>(items: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
};

describe('followPages', () => {
  it('follows the cursor until a page names none', async () => {
    const asked: (string | undefined)[] = [];
    const pages = followPages(
      async (cursor) => {
        asked.push(cursor);
        return { n: asked.length, next: asked.length < 3 ? `c${asked.length}` : undefined };
      },
      (page) => page.next,
      () => new Error('repeated'),
    );
    expect((await collect(pages)).map((p) => p.n)).toEqual([1, 2, 3]);
    expect(asked).toEqual([undefined, 'c1', 'c2']);
  });

  it('fails on a cursor it was given before, after yielding the page that repeated it', async () => {
    const seen: number[] = [];
    const pages = followPages(
      async (cursor) => ({ n: cursor === undefined ? 0 : Number(cursor), next: '1' }),
      (page) => page.next,
      () => new Error('the cursor repeated itself'),
    );
    await expect(
      (async () => {
        for await (const page of pages) seen.push(page.n);
      })(),
    ).rejects.toThrow(/repeated/);
    expect(seen).toEqual([0, 1]);
  });

  it('asks for the next cursor only when the caller wants another page', async () => {
    let nextAsked = 0;
    const pages = followPages(
      async () => 'page',
      () => {
        nextAsked++;
        return 'again';
      },
      () => new Error('repeated'),
    );
    for await (const page of pages) {
      expect(page).toBe('page');
      break;
    }
    expect(nextAsked).toBe(0);
  });
});
