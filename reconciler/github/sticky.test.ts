import { describe, expect, it } from 'vitest';
import { GITHUB_COMMENT_LIMIT, parseStickyMarker, splitSticky, stickyMarker } from './sticky.ts';

describe('sticky markers', () => {
  it('are found only at the start of a body, with kind, environment and part', () => {
    expect(parseStickyMarker('<!-- tidemark-plan environment=staging -->\n## Plan')).toEqual({ kind: 'plan', environment: 'staging', part: 1 });
    expect(parseStickyMarker('<!-- tidemark-plan environment=prod%20eu part=3 -->\nx')).toEqual({ kind: 'plan', environment: 'prod eu', part: 3 });
    expect(parseStickyMarker('<!-- tidemark-apply environment=production -->')).toEqual({ kind: 'apply', environment: 'production', part: 1 });
    expect(parseStickyMarker('quoting: <!-- tidemark-plan environment=staging -->')).toBeUndefined();
    expect(parseStickyMarker('<!-- tidemark-plan environment=staging part=0 -->')).toBeUndefined();
    expect(parseStickyMarker('<!-- tidemark-plan environment=%E0%A4%A -->')).toBeUndefined();
    expect(parseStickyMarker(null)).toBeUndefined();
  });

  it('round-trip any environment name without ending the HTML comment', () => {
    for (const env of ['staging', 'eu -->west', 'a b', 'ünï']) {
      const m = stickyMarker('plan', env, 2);
      expect(m.match(/-->/g)).toHaveLength(1);
      expect(parseStickyMarker(`${m}\n`)).toEqual({ kind: 'plan', environment: env, part: 2 });
    }
  });
});

const TABLE_HEAD = '| Action | Address | Reason |\n| --- | --- | --- |\n';
const rows = (n: number) => Array.from({ length: n }, (_, i) => `| create | \`customerio.segment.s${i}\` | ${'declared in the specs '.repeat(3)}|\n`).join('');
const details = (i: number, lines: number) => `<details><summary>create <code>s${i}</code></summary>\n\n\`\`\`diff\n${Array.from({ length: lines }, (_, j) => `+ attribute_${j}: "${'v'.repeat(40)}"`).join('\n')}\n\`\`\`\n\n</details>\n\n`;

/** What a reader sees once the parts are put back together: each part's body without its two header lines. */
const bodies = (parts: string[]) => parts.map((p) => p.split('\n').slice(3).join('\n'));

describe('splitSticky', () => {
  it('keeps a body that fits as one comment under the plain marker, replacing the marker it had', () => {
    const body = '<!-- tidemark-plan environment=old -->\n## Plan for staging\n';
    expect(splitSticky('plan', 'staging', body)).toEqual(['<!-- tidemark-plan environment=staging -->\n## Plan for staging\n']);
    expect(splitSticky('plan', 'staging', 'x'.repeat(GITHUB_COMMENT_LIMIT - 100))).toHaveLength(1);
  });

  it('cuts between blocks, numbers the parts, and repeats a table header in the part a table continues in', () => {
    const body = `## Plan\n\n${TABLE_HEAD}${rows(60)}\n${Array.from({ length: 8 }, (_, i) => details(i, 6)).join('')}### Data impact\n\nnone\n`;
    const parts = splitSticky('plan', 'staging', body, 3000);
    expect(parts.length).toBeGreaterThan(3);
    parts.forEach((p, i) => {
      expect(p.length).toBeLessThanOrEqual(3000);
      expect(p.startsWith(`${stickyMarker('plan', 'staging', i + 1)}\n_tidemark plan for staging: part ${i + 1} of ${parts.length}_\n\n`)).toBe(true);
      expect((p.match(/^```/gm) ?? []).length % 2).toBe(0);
      expect((p.match(/<details>/g) ?? []).length).toBe((p.match(/<\/details>/g) ?? []).length);
      if (/^\| create/m.test(p)) expect(p).toContain(TABLE_HEAD);
    });
    // Nothing lost, nothing reordered: every row and block appears once, in order.
    const joined = bodies(parts).join('');
    const order = [...joined.matchAll(/customerio\.segment\.s(\d+)|<code>s(\d+)<\/code>/g)].map((m) => m[0]);
    expect(order).toEqual([...Array.from({ length: 60 }, (_, i) => `customerio.segment.s${i}`), ...Array.from({ length: 8 }, (_, i) => `<code>s${i}</code>`)]);
    expect(joined).toContain('### Data impact');
  });

  it('cuts a block larger than a part by lines, closing and reopening its fence and <details>', () => {
    const parts = splitSticky('plan', 'staging', `intro\n\n${details(1, 200)}tail\n`, 4000);
    expect(parts.length).toBeGreaterThan(2);
    for (const p of parts) {
      expect(p.length).toBeLessThanOrEqual(4000);
      expect((p.match(/^```/gm) ?? []).length % 2).toBe(0);
      expect((p.match(/<details[ >]/g) ?? []).length).toBe((p.match(/<\/details>/g) ?? []).length);
    }
    const attrs = bodies(parts).join('').match(/\+ attribute_\d+/g)!;
    expect(attrs).toEqual(Array.from({ length: 200 }, (_, j) => `+ attribute_${j}`));
    expect(parts.at(-1)).toContain('tail');
  });

  it('refuses a limit that leaves no room for a part', () => {
    expect(() => splitSticky('plan', 'staging', 'x'.repeat(2000), 500)).toThrow(RangeError);
  });
});
