/** The plain progress lines long commands write off a terminal: per phase, then every interval, never more. */
import { describe, expect, it } from 'vitest';
import { plainProgress, progressFor, stopAllProgress, type ProgressClock } from '../../reconciler/cli/progress.ts';
import { sourceProgress } from '../../reconciler/cli/commands/sync.ts';

/** A clock the test moves; `every` ticks as time passes over each multiple of its interval. */
function fakeClock() {
  let t = 0;
  const timers: Array<{ ms: number; next: number; tick: () => void; live: boolean }> = [];
  const clock: ProgressClock = {
    now: () => t,
    every: (ms, tick) => {
      const timer = { ms, next: t + ms, tick, live: true };
      timers.push(timer);
      return () => void (timer.live = false);
    },
  };
  const advance = (ms: number) => {
    const end = t + ms;
    for (;;) {
      const due = timers.filter((x) => x.live && x.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      t = due.next;
      due.next += due.ms;
      due.tick();
    }
    t = end;
  };
  return { clock, advance, live: () => timers.filter((x) => x.live).length };
}

function sink(isTTY: boolean) {
  let text = '';
  return { out: Object.assign({ write: (s: string) => void (text += s) }, { isTTY }) as unknown as NodeJS.WriteStream, text: () => text };
}

describe('plain progress lines', () => {
  it('a line per phase start and end, and the latest counts once per interval in between', () => {
    const { clock, advance, live } = fakeClock();
    const lines: string[] = [];
    const p = plainProgress((l) => lines.push(l), { command: 'sync', clock, intervalMs: 10_000 });
    p.phase('crm_customers');
    expect(lines).toEqual(['tidemark sync: crm_customers: started\n']);
    // Many updates inside one interval: nothing more is written.
    for (let i = 1; i <= 50; i++) {
      advance(100);
      p.update(`${(i * 8000).toLocaleString('en-US')} rows read`);
    }
    expect(lines).toHaveLength(1);
    advance(5_000);
    expect(lines.at(-1)).toBe('tidemark sync: crm_customers: 400,000 rows read, 10.0 s\n');
    advance(2_300);
    p.update('480,000 rows read');
    expect(lines).toHaveLength(2);
    // No update for the rest of the interval: the timer still says where it is.
    advance(7_700);
    expect(lines.at(-1)).toBe('tidemark sync: crm_customers: 480,000 rows read, 20.0 s\n');
    advance(3_000);
    p.done('1,000,000 rows read, 998,102 sent');
    expect(lines.at(-1)).toBe('tidemark sync: crm_customers: done: 1,000,000 rows read, 998,102 sent, 23.0 s\n');
    // Between phases the timer writes nothing; a new phase restarts the elapsed time.
    advance(30_000);
    expect(lines).toHaveLength(4);
    p.phase('returns', 'reading');
    advance(10_000);
    expect(lines.slice(4)).toEqual(['tidemark sync: returns: reading\n', 'tidemark sync: returns: reading, 10.0 s\n']);
    p.close();
    expect(live()).toBe(0);
  });

  it('a writer left mid-phase (the command threw) stops ticking when the command is over', () => {
    const { clock, advance, live } = fakeClock();
    const lines: string[] = [];
    const p = plainProgress((l) => lines.push(l), { command: 'audiences', clock, intervalMs: 10_000 });
    p.phase('evaluate');
    advance(10_000);
    expect(lines).toHaveLength(2);
    stopAllProgress();
    expect(live()).toBe(0);
    advance(60_000);
    expect(lines).toHaveLength(2);
  });

  it('writes nothing on a terminal (the command keeps its own display there)', () => {
    const { clock, advance } = fakeClock();
    const tty = sink(true);
    const p = progressFor(tty.out, { command: 'apply', clock, intervalMs: 10 });
    p.phase('plan');
    advance(50);
    p.update('x');
    p.done();
    expect(tty.text()).toBe('');
    const pipe = sink(false);
    const q = progressFor(pipe.out, { command: 'apply', clock, intervalMs: 10 });
    q.phase('plan');
    q.done('3 change(s) to apply');
    expect(pipe.text()).toBe('tidemark apply: plan: started\ntidemark apply: plan: done: 3 change(s) to apply, 0.0 s\n');
  });

  it("a sync source's counts: rows read (with the share of a file), rows sent", () => {
    const { clock, advance } = fakeClock();
    const pipe = sink(false);
    const s = sourceProgress({ stderr: pipe.out }, 'sync', 'crm_customers', clock);
    advance(9_000);
    s.onProgress({ phase: 'reading', done: 400_000, fraction: 0.4 });
    advance(3_300);
    s.onProgress({ phase: 'sending', done: 380_000 });
    s.done();
    expect(pipe.text()).toBe(
      'tidemark sync: crm_customers: started\n' +
        'tidemark sync: crm_customers: 400,000 rows read (40%), 10.0 s\n' +
        'tidemark sync: crm_customers: done: 400,000 rows read (40%), 380,000 sent, 12.3 s\n',
    );
    // On a terminal: the bar (carriage returns), no plain lines.
    const tty = sink(true);
    const t = sourceProgress({ stderr: tty.out }, 'sync', 'crm_customers', clock);
    t.onProgress({ phase: 'reading', done: 5, fraction: 0.5 });
    t.done();
    expect(tty.text()).not.toContain('tidemark sync:');
  });
});
