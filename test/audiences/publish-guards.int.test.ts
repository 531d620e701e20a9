/**
 * Audiences end to end, through the CLI against the sandbox as a live service: a segment evaluated from
 * what a sync delivered is published to its manual segment and its boolean attribute; a stale source
 * freezes it (nothing changes in Customer.io); a membership that moves more than `expect` allows is held,
 * and `--accept` publishes it. Counts are read back from the sandbox, not from tidemark's own report.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { cli, makeProject, ndjson, personSource, useSandbox, writeData } from '../support/sync-fixture.ts';

let sandbox: RunningSandbox;
useSandbox(4242, (s) => (sandbox = s));

const SEGMENTS = `kind: Fields
name: audience_fields
fields:
  is_vip:
    type: boolean
    nature: state
    owner: tidemark
---
kind: Segment
name: vip
conditions:
  attribute: { field: vip_tier, op: in, value: [gold, platinum] }
freshness_guard: { max_age: 1h }
expect: { max_change: 50% }
publish:
  customerio_segment: true
  attribute: is_vip
`;

const people = (n: number, gold: (i: number) => boolean) =>
  ndjson(Array.from({ length: n }, (_, i) => ({ customer_id: String(1000 + i), vip_tier: gold(i) ? 'gold' : 'silver', vip_tier_updated_at: '2026-12-01T00:00:00Z' })));

describe('audiences: publish, freeze on a stale source, hold outside expect', () => {
  it('publishes only what the guards allow, and Customer.io holds exactly that', async () => {
    const dir = await makeProject({
      sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier', vip_tier_updated_at: 'vip_tier_updated_at' }, freshness: '1h', schedule: '0 * * * *' })],
      data: { 'customers.ndjson': people(2500, (i) => i % 2 === 0) },
    });
    await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS);
    const run = (args: string[], now: string) => cli(dir, sandbox, [...args, '--now', now]);

    const applied = await run(['apply', '--auto-approve'], '2026-12-02T10:00:00Z');
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect((await run(['sync', 'run', 'customers'], '2026-12-02T10:00:00Z')).code).toBe(0);
    const first = await run(['audiences', 'run'], '2026-12-02T10:05:00Z');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/vip: 1250 members, \+1250 entering, -0 leaving/);
    expect(first.stdout).toMatch(/✓ vip: added 1250, removed 0 in 2 request\(s\)/);
    expect(first.stdout).not.toMatch(/1000\d/); // counts only: no customer id in the output
    expect(await segmentSize('tidemark: vip')).toBe(1250);
    expect(attributeCount('is_vip', true)).toBe(1250);

    // The warehouse drops most golds, and the source is now two hours old: frozen, nothing moves.
    await writeData(dir, 'customers.ndjson', people(2500, (i) => i % 10 === 0));
    const stale = await run(['audiences', 'run'], '2026-12-02T12:05:00Z');
    expect(stale.code, stale.stdout + stale.stderr).toBe(3);
    expect(stale.stdout).toMatch(/vip: .*FROZEN: source customers last synced 2h ago \(max_age 1h\)/);
    const status = await run(['status'], '2026-12-02T12:05:00Z');
    expect(status.stdout).toMatch(/segment vip is frozen: source customers last synced 2h ago/);
    expect(await segmentSize('tidemark: vip')).toBe(1250);

    // Fresh again, but the membership fell by 80%: held, not published, until accepted.
    expect((await run(['sync', 'run', 'customers'], '2026-12-02T12:10:00Z')).code).toBe(0);
    const plan = await run(['plan'], '2026-12-02T12:15:00Z');
    expect(plan.stdout).toMatch(/vip +0 +1000/);
    expect(plan.stdout).toMatch(/vip is not published this run: membership moved 80\.0% \(1250 → 250\)/);
    const held = await run(['audiences', 'run'], '2026-12-02T12:15:00Z');
    expect(held.code).toBe(3);
    expect(held.stdout).toMatch(/HELD: membership moved 80\.0% \(1250 → 250\), more than the expected max_change 50%/);
    expect(await segmentSize('tidemark: vip')).toBe(1250);

    const accepted = await run(['audiences', 'run', '--accept'], '2026-12-02T12:16:00Z');
    expect(accepted.code, accepted.stdout).toBe(0);
    expect(accepted.stdout).toMatch(/✓ vip: added 0, removed 1000 in 1 request\(s\)/);
    expect(await segmentSize('tidemark: vip')).toBe(250);
    expect(attributeCount('is_vip', true)).toBe(250);
    expect(attributeCount('is_vip', false)).toBe(1000);

    // Nothing left to do.
    const again = await run(['audiences', 'run'], '2026-12-02T12:17:00Z');
    expect(again.stdout).toMatch(/✓ vip: added 0, removed 0 in 0 request\(s\)/);
  }, 120_000);
});

/** The segment's size as Customer.io holds it (read from the emulator: the App API's 10/s limit is not under test here). */
async function segmentSize(name: string): Promise<number> {
  const seg = sandbox.customerio.listSegments().find((s) => s.name === name);
  return seg ? sandbox.customerio.segmentMembers(seg.id).length : -1;
}

function attributeCount(attribute: string, value: boolean): number {
  let n = 0;
  for (let i = 0; i < 2500; i++) {
    const p = sandbox.customerio.getPerson(String(1000 + i));
    if (p?.attributes?.[attribute] === value) n++;
  }
  return n;
}

describe('segments built in Customer.io UI, referenced by id', () => {
  it('are read through the App API (paged) and usable in conditions; a missing one stops the plan at its line', async () => {
    const dir = await makeProject({
      sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier', vip_tier_updated_at: 'vip_tier_updated_at' } })],
      data: { 'customers.ndjson': people(3000, (i) => i % 2 === 0) },
    });
    const specs = (id: number) => `kind: Segment
name: engaged
customerio_segment: { id: ${id} }
---
kind: Segment
name: engaged_gold
conditions:
  all:
    - segment: engaged
    - attribute: { field: vip_tier, op: eq, value: gold }
`;
    await writeFile(path.join(dir, 'specs', 'segments.yaml'), specs(77));
    const run = (args: string[]) => cli(dir, sandbox, [...args, '--now', '2026-12-02T10:00:00Z']);
    expect((await run(['sync', 'run', 'customers'])).code).toBe(0);
    // The UI segment holds every third person: 1000 members, 1500 of everyone is gold.
    sandbox.customerio.seedSegment({ id: 77, name: 'Engaged (built in the UI)', type: 'dynamic', memberIds: Array.from({ length: 1000 }, (_, i) => String(1000 + i * 3)) });
    const plan = await run(['audiences', 'plan']);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    // Gold is every even index; every third index is a member: even multiples of 3, i.e. multiples of 6 below 3000.
    expect(plan.stdout).toMatch(/engaged_gold: 500 members/);

    await writeFile(path.join(dir, 'specs', 'segments.yaml'), specs(78));
    const missing = await run(['plan']);
    expect(missing.code).toBe(1);
    expect(missing.stdout + missing.stderr).toMatch(/segments\.yaml:3:\d+.*REF008.*Segment "engaged" references Customer\.io segment 78, which does not exist/s);
  }, 120_000);
});

describe('exclusive groups in the mirror', () => {
  it('counts the people two segments of one group both hold', async () => {
    // The static analysis (SEG001) would stop these specs; switched off here to see the run-time count.
    const dir = await makeProject({
      sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier', vip_tier_updated_at: 'vip_tier_updated_at' } })],
      data: { 'customers.ndjson': people(900, (i) => i % 3 === 0) },
      policy: { SEG001: 'off' },
    });
    await writeFile(
      path.join(dir, 'specs', 'segments.yaml'),
      `kind: Segment
name: gold
conditions: { attribute: { field: vip_tier, op: eq, value: gold } }
exclusive_group: offers
---
kind: Segment
name: tiered
conditions: { attribute: { field: vip_tier, op: exists } }
exclusive_group: offers
`,
    );
    const run = (args: string[]) => cli(dir, sandbox, [...args, '--now', '2026-12-02T10:00:00Z']);
    expect((await run(['sync', 'run', 'customers'])).code).toBe(0);
    const plan = await run(['audiences', 'plan']);
    expect(plan.stdout).toMatch(/exclusive group offers \(gold, tiered\): 300 people are in more than one segment/);
  }, 120_000);
});

describe('a publish Customer.io does not acknowledge', () => {
  it('exits 1 naming the operation and status (never an id), records nothing, and the next run sends it', async () => {
    const dir = await makeProject({
      sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier', vip_tier_updated_at: 'vip_tier_updated_at' } })],
      data: { 'customers.ndjson': people(300, (i) => i % 2 === 0) },
    });
    await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS.replace('expect: { max_change: 50% }\n', ''));
    const run = (args: string[]) => cli(dir, sandbox, [...args, '--now', '2026-12-02T10:00:00Z']);
    expect((await run(['apply', '--auto-approve'])).code).toBe(0);
    expect((await run(['sync', 'run', 'customers'])).code).toBe(0);
    sandbox.faults.set({ service: 'track', pathPattern: '^/api/v1/segments/\\d+/add_customers$', errorRate: 1 });
    const failed = await run(['audiences', 'run']);
    sandbox.faults.clear();
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/✗ vip: added 0, removed 0 in 0 request\(s\) — \S+ failed \(HTTP 5\d\d, retryable\); what was not acknowledged is sent again next run/);
    expect(failed.stdout + failed.stderr).not.toMatch(/\b1\d{3}\b/);
    expect(await segmentSize('tidemark: vip')).toBe(0);
    const next = await run(['audiences', 'run']);
    expect(next.code, next.stdout).toBe(0);
    expect(next.stdout).toMatch(/✓ vip: added 150, removed 0/);
    expect(await segmentSize('tidemark: vip')).toBe(150);
  }, 120_000);
});
