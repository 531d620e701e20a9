/** The progress line of long syncs: how far the read is (from the file's size) and how many rows went out. */
import { describe, expect, it } from 'vitest';
import { progressPrinter } from '../../reconciler/cli/commands/sync.ts';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import type { SyncProgress } from '../../reconciler/sync/run.ts';
import { makeProject, personSource, syncOk, useSandbox } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
let dir: string | undefined;

useSandbox(37, (s) => (sandbox = s));

function terminal(isTTY: boolean) {
  let text = '';
  return { stderr: Object.assign({ write: (s: string) => void (text += s) }, { isTTY }) as unknown as NodeJS.WriteStream, text: () => text };
}

describe('progress line', () => {
  it('draws the read share as a bar and counts rows sent; prints nothing off a terminal', () => {
    let t = 0;
    const tty = terminal(true);
    const p = progressPrinter(tty, 'people', () => (t += 200));
    p.update({ phase: 'reading', done: 5000, fraction: 0.5 });
    p.update({ phase: 'sending', done: 1000 });
    expect(tty.text()).toContain('people: read 5,000 rows [##########..........] 50%\u001b[K');
    expect(tty.text()).toContain('people: read 5,000 rows [##########..........] 50% · sent 1,000\u001b[K');
    p.done();
    expect(tty.text().endsWith('\r\u001b[K')).toBe(true);

    const pipe = terminal(false);
    const q = progressPrinter(pipe, 'people', () => (t += 200));
    q.update({ phase: 'reading', done: 1, fraction: 1 });
    q.done();
    expect(pipe.text()).toBe('');
  });

  it('reports how far through a CSV file the read is, up to the whole file', async () => {
    const rows = Array.from({ length: 30_000 }, (_, i) => `c${i},${i},${'x'.repeat(20)}`);
    dir = await makeProject({
      sources: [personSource({ connector: '{ type: csv, path: data/customers.csv }', fields: { order_count: 'orders' } })],
      data: { 'customers.csv': `customer_id,orders,padding\n${rows.join('\n')}\n` },
    });
    const seen: SyncProgress[] = [];
    await syncOk(dir, sandbox, 'customers', { mode: 'plan', onProgress: (p) => void seen.push(p) });
    const fractions = seen.filter((p) => p.phase === 'reading').map((p) => p.fraction);
    // About 1 MB read 256 KiB at a time: several steps, never backwards, ending at the whole file.
    expect(fractions.length).toBeGreaterThanOrEqual(3);
    expect(fractions.every((f, i) => f !== undefined && (i === 0 || f >= fractions[i - 1]!))).toBe(true);
    expect(fractions.at(-1)).toBe(1);
    expect(fractions[0]).toBeLessThan(0.5);
  });
});
