/**
 * Publishing survives SIGKILL: `tidemark audiences run` runs as a child process against this test's
 * sandbox, with latency on the segment and batch requests so a run takes a while, and is killed at a
 * (seeded) random moment. A rerun then completes, and Customer.io must hold exactly the expected members
 * in the manual segment and exactly the expected `is_vip` values: nothing lost, nothing duplicated, no
 * stale member left behind. Each iteration moves half of the people's tiers, so a kill in the middle of
 * an add or a remove pass is caught.
 *
 * The default suite runs 3 iterations; `TIDEMARK_SLOW_TESTS=1` runs 12.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createPrng } from '../../reconciler/core/prng.ts';
import { createSandbox, type RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { runChild as runChildIn } from '../support/child-cli.ts';
import { makeProject, ndjson, personSource, removeProject, sandboxEnv, writeData } from '../support/sync-fixture.ts';

const SLOW = process.env.TIDEMARK_SLOW_TESTS === '1';
const ITERATIONS = SLOW ? 12 : 3;
const PEOPLE = 6000;

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 77 });
});
afterAll(async () => {
  await sandbox.close();
});

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
publish:
  customerio_segment: true
  attribute: is_vip
`;

const runChild = (dir: string, args: string[], killAfterMs?: number) =>
  runChildIn(dir, args, { env: sandboxEnv(sandbox), ...(killAfterMs !== undefined ? { killAfterMs } : {}) });

describe('audience publishing under SIGKILL', () => {
  it(`keeps Customer.io's segment and attribute exactly right across ${ITERATIONS} killed runs`, async () => {
    const rnd = createPrng(2026);
    const dir = await makeProject({ sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier' } })], data: {} });
    onTestFinished(() => removeProject(dir));
    await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS);
    let gold = Array.from({ length: PEOPLE }, () => rnd.chance(0.5));
    const write = () => writeData(dir, 'customers.ndjson', ndjson(gold.map((g, i) => ({ customer_id: `p${i}`, vip_tier: g ? 'gold' : 'silver' }))));
    await write();
    const applied = await runChild(dir, ['apply', '--auto-approve']);
    expect(applied.code, applied.output).toBe(0);
    const everVip = new Set<string>();
    const kills: string[] = [];

    for (let it = 0; it < ITERATIONS; it++) {
      if (it > 0) {
        gold = gold.map((g) => (rnd.chance(0.5) ? !g : g));
        await write();
      }
      const synced = await runChild(dir, ['sync', 'run', 'customers']);
      expect(synced.code, synced.output).toBe(0);
      sandbox.faults.set({ service: 'track', pathPattern: '^/api/(v1/segments/\\d+/(add|remove)_customers|v2/batch)$', latencyMs: [80, 160] });
      const killAt = 300 + Math.floor(rnd.next() * 2500);
      const killed = await runChild(dir, ['audiences', 'run'], killAt);
      const atKill = sandbox.customerio.listSegments().find((s) => s.name === 'tidemark: vip')?.count;
      kills.push(`iteration ${it}: ${killed.signal === 'SIGKILL' ? `killed after ${killAt} ms, the segment held ${atKill}` : `finished (${killed.code})`}`);
      sandbox.faults.clear();
      const rerun = await runChild(dir, ['audiences', 'run']);
      expect(rerun.code, `${kills.join('\n')}\n${rerun.output}`).toBe(0);

      const expected = new Set(gold.flatMap((g, i) => (g ? [`p${i}`] : [])));
      for (const id of expected) everVip.add(id);
      const segment = sandbox.customerio.listSegments().find((s) => s.name === 'tidemark: vip')!;
      const members = new Set(sandbox.customerio.segmentMembers(segment.id).map((m) => m.id));
      expect(members.size, kills.join('\n')).toBe(expected.size);
      expect([...expected].filter((id) => !members.has(id)), 'missing from the segment').toEqual([]);
      for (const id of everVip) expect(sandbox.customerio.getPerson(id)?.attributes.is_vip, id).toBe(expected.has(id));
      const plan = await runChild(dir, ['audiences', 'plan']);
      expect(plan.output).toMatch(/vip: \d+ members, \+0 entering, -0 leaving/);
    }
    if (SLOW || process.env.TIDEMARK_AUDIENCE_CRASH_LOG === '1') console.log(kills.join('\n'));
    expect(kills.filter((k) => k.includes('killed')).length, kills.join('\n')).toBeGreaterThan(0);
  }, 600_000);
});
