import { describe, expect, it } from 'vitest';
import { setScalar } from './set-scalar.ts';

const FILE = `# yaml-language-server: $schema=./schema/survey-target.json
# Post-purchase fit: consumables are used for a week before we ask.
kind: SurveyTarget
name: post_purchase_fit
payload: [last_purchase_at, order_count]     # few fields
mailing_list: { name: "tidemark: post-purchase fit" }
holdout: 10%
---
# the second one
kind: Segment
name: vip
description: Gold and platinum.   # aligned comment
publish:
  customerio_segment: true
`;

/** The lines of b that differ from a, by number. */
function changedLines(a: string, b: string): Array<[number, string]> {
  const x = a.split('\n');
  return b.split('\n').flatMap((l, i) => (x[i] === l ? [] : [[i + 1, l] as [number, string]]));
}

describe('setScalar', () => {
  it('replaces a value in a flow mapping, keeping its quotes and every other byte', () => {
    const r = setScalar(FILE, { document: 0, path: ['mailing_list', 'name'], value: 'Post-purchase (CX)' });
    expect(r).toMatchObject({ ok: true, line: 6 });
    if (!r.ok) return;
    expect(changedLines(FILE, r.text)).toEqual([[6, 'mailing_list: { name: "Post-purchase (CX)" }']]);
  });

  it('keeps an aligned end-of-line comment and plain style in the second document', () => {
    const r = setScalar(FILE, { document: 1, path: ['description'], value: 'Gold only' });
    if (!r.ok) throw new Error(r.problem);
    expect(r.line).toBe(12);
    expect(changedLines(FILE, r.text)).toEqual([[12, 'description: Gold only   # aligned comment']]);
  });

  it('quotes when the plain style cannot hold the value, and proves the result reads back', () => {
    const r = setScalar(FILE, { document: 1, path: ['description'], value: 'VIP: #1 tier' });
    if (!r.ok) throw new Error(r.problem);
    expect(changedLines(FILE, r.text)).toEqual([[12, "description: 'VIP: #1 tier'   # aligned comment"]]);
    const multi = setScalar(FILE, { document: 1, path: ['description'], value: "two\nlines 'and' \"quotes\"" });
    if (!multi.ok) throw new Error(multi.problem);
    expect(changedLines(FILE, multi.text)).toEqual([[12, 'description: "two\\nlines \'and\' \\"quotes\\""   # aligned comment']]);
  });

  it('adds a missing key as one line at the end of its block mapping, or inside a flow mapping', () => {
    const r = setScalar(FILE, { document: 0, path: ['description'], value: 'made in the UI' });
    if (!r.ok) throw new Error(r.problem);
    expect(r.line).toBe(8);
    expect(changedLines(FILE, r.text)[0]).toEqual([8, 'description: made in the UI']);
    expect(r.text.split('\n').length).toBe(FILE.split('\n').length + 1);
    const nested = setScalar(FILE, { document: 1, path: ['publish', 'attribute'], value: 'is_vip' });
    if (!nested.ok) throw new Error(nested.problem);
    expect(nested.text.endsWith('publish:\n  customerio_segment: true\n  attribute: is_vip\n')).toBe(true);
    const flow = setScalar(FILE, { document: 0, path: ['mailing_list', 'note'], value: 'x' });
    if (!flow.ok) throw new Error(flow.problem);
    expect(changedLines(FILE, flow.text)).toEqual([[6, 'mailing_list: { name: "tidemark: post-purchase fit", note: x }']]);
  });

  it('keeps CRLF line endings', () => {
    const crlf = FILE.replace(/\n/g, '\r\n');
    const r = setScalar(crlf, { document: 1, path: ['description'], value: 'Gold only' });
    if (!r.ok) throw new Error(r.problem);
    expect(r.text).toBe(crlf.replace('description: Gold and platinum.', 'description: Gold only'));
    const added = setScalar(crlf, { document: 0, path: ['description'], value: 'x' });
    if (!added.ok) throw new Error(added.problem);
    expect(added.text.includes('holdout: 10%\r\ndescription: x\r\n---')).toBe(true);
    expect(/\r(?!\n)|(?<!\r)\n/.test(added.text)).toBe(false);
  });

  it('refuses what it cannot prove: a list where a value was asked, a missing document, CR-only files', () => {
    expect(setScalar(FILE, { document: 0, path: ['payload'], value: 'x' })).toEqual({ ok: false, problem: 'has payload as a list, mapping or alias, not a plain value' });
    expect(setScalar(FILE, { document: 5, path: ['name'], value: 'x' })).toMatchObject({ ok: false });
    expect(setScalar(FILE.replace(/\n/g, '\r'), { document: 0, path: ['name'], value: 'x' })).toMatchObject({ ok: false, problem: expect.stringContaining('CR only') });
  });

  it('writes non-string scalars plainly', () => {
    const r = setScalar(FILE, { document: 1, path: ['publish', 'customerio_segment'], value: false });
    if (!r.ok) throw new Error(r.problem);
    expect(changedLines(FILE, r.text)).toEqual([[14, '  customerio_segment: false']]);
  });
});
