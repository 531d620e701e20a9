/**
 * Audiences with the state in PostgreSQL (the real server of the test machine): the mirror is rebuilt with
 * Postgres' JSON functions, the compiled SQL runs there, and the counts and the published membership are
 * the same as on the embedded store. Skipped with a loud banner when no server answers (fails in CI).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../../reconciler/sandbox/index.ts';
import { stateBackends, TEST_DATABASE_URL } from '../support/state-backends.ts';
import { cli, makeProject, ndjson, personSource, returnsSource, useSandbox } from '../support/sync-fixture.ts';

const postgres = (await stateBackends('audiences')).find((b) => b.name === 'postgres')!;
let sandbox: RunningSandbox;
useSandbox(515, (s) => (sandbox = s));
let env: NodeJS.ProcessEnv = {};
let schema = '';

beforeAll(async () => {
  if (!postgres.available) return;
  const location = await postgres.newLocation();
  schema = location.schema!;
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${location.schema!}`);
  env = { TIDEMARK_DATABASE_URL: url.toString() };
});
afterAll(async () => {
  await postgres.cleanup();
});

const SEGMENTS = `kind: Segment
name: gold_returners
conditions:
  all:
    - attribute: { field: vip_tier, op: in, value: [gold, platinum] }
    - attribute: { field: vip_tier_updated_at, op: within, duration: 30d }
    - event: { name: return_created, to: 10d, count: { min: 2 } }
publish: { customerio_segment: true }
---
kind: Segment
name: quiet
conditions:
  not: { segment: gold_returners }
`;

describe.skipIf(!postgres.available)('audiences with the state in PostgreSQL', () => {
  it('evaluates and publishes the same members as the embedded store', async () => {
    const people = ndjson(Array.from({ length: 400 }, (_, i) => ({ customer_id: String(i), vip_tier: i % 2 ? 'gold' : 'silver', vip_tier_updated_at: i % 4 === 1 ? '2026-10-01T00:00:00Z' : '2026-11-25T00:00:00Z' })));
    // Two returns in the window for multiples of 3; one for the others.
    const returns = ndjson(
      Array.from({ length: 400 }, (_, i) => [
        { return_id: `a${i}`, customer_id: String(i), created_at: '2026-11-28 10:00:00', reason: 'r', refund_amount: 1 },
        ...(i % 3 === 0 ? [{ return_id: `b${i}`, customer_id: String(i), created_at: '2026-11-29 10:00:00', reason: 'r', refund_amount: 1 }] : []),
      ]).flat(),
    );
    const counts: string[] = [];
    for (const state of ['embedded', 'postgres'] as const) {
      sandbox.customerio.reset();
      const dir = await makeProject({
        state,
        sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier', vip_tier_updated_at: 'vip_tier_updated_at' } }), returnsSource()],
        data: { 'customers.ndjson': people, 'returns.ndjson': returns },
      });
      await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS);
      const run = (args: string[]) => cli(dir, sandbox, [...args, '--now', '2026-12-02T10:00:00Z'], state === 'postgres' ? env : {});
      expect((await run(['apply', '--auto-approve'])).code).toBe(0);
      expect((await run(['sync', 'run'])).code).toBe(0);
      const published = await run(['audiences', 'run']);
      expect(published.code, published.stdout + published.stderr).toBe(0);
      counts.push(published.stdout.split('\n').filter((l) => /members|added/.test(l)).join('\n'));
      const seg = sandbox.customerio.listSegments().find((s) => s.name === 'tidemark: gold_returners')!;
      // Odd ids, updated within 30 days (not i % 4 === 1, so i % 4 === 3), with two returns (i % 3 === 0): i % 12 === 3.
      expect(sandbox.customerio.segmentMembers(seg.id).map((m) => Number(m.id)).sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 12 === 3));
    }
    expect(counts[1]).toBe(counts[0]);
    expect(counts[0]).toMatch(/gold_returners: 34 members/);
    expect(counts[0]).toMatch(/quiet: 366 members/);
  }, 180_000);

  it('refills the unlogged mirror after a server crash emptied it, and publishes only what moved', async () => {
    // A schema of its own: the test above already ran in the shared one.
    const location = await postgres.newLocation();
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${location.schema!}`);
    const own = { TIDEMARK_DATABASE_URL: url.toString() };
    const people = (gold: (i: number) => boolean) =>
      ndjson(Array.from({ length: 400 }, (_, i) => ({ customer_id: String(i), vip_tier: gold(i) ? 'gold' : 'silver', vip_tier_updated_at: i % 4 === 1 ? '2026-10-01T00:00:00Z' : '2026-11-25T00:00:00Z' })));
    const returns = ndjson(
      Array.from({ length: 400 }, (_, i) => [
        { return_id: `a${i}`, customer_id: String(i), created_at: '2026-11-28 10:00:00', reason: 'r', refund_amount: 1 },
        ...(i % 3 === 0 ? [{ return_id: `b${i}`, customer_id: String(i), created_at: '2026-11-29 10:00:00', reason: 'r', refund_amount: 1 }] : []),
      ]).flat(),
    );
    sandbox.customerio.reset();
    const dir = await makeProject({
      state: 'postgres',
      sources: [personSource({ system: 'warehouse', fields: { vip_tier: 'vip_tier', vip_tier_updated_at: 'vip_tier_updated_at' } }), returnsSource()],
      data: { 'customers.ndjson': people((i) => i % 2 === 1), 'returns.ndjson': returns },
    });
    await writeFile(path.join(dir, 'specs', 'segments.yaml'), SEGMENTS);
    const run = async (args: string[]) => {
      const r = await cli(dir, sandbox, [...args, '--now', '2026-12-02T10:00:00Z'], own);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return r.stdout;
    };
    await run(['apply', '--auto-approve']);
    await run(['sync', 'run']);
    expect(await run(['audiences', 'run'])).toMatch(/gold_returners: 34 members/);
    const members = () => sandbox.customerio.segmentMembers(sandbox.customerio.listSegments().find((s) => s.name === 'tidemark: gold_returners')!.id).map((m) => Number(m.id)).sort((a, b) => a - b);
    const upTo400 = Array.from({ length: 400 }, (_, i) => i);
    expect(members()).toEqual(upTo400.filter((i) => i % 12 === 3));

    const db = new pg.Client({ connectionString: TEST_DATABASE_URL, options: `-c search_path=${location.schema!}` });
    await db.connect();
    try {
      // The derived mirror and the candidates found over it are unlogged; what cannot be derived again
      // (snapshots, the published membership, the marks) is not.
      const persistence = async (t: string) => (await db.query<{ p: string }>(`SELECT relpersistence AS p FROM pg_class WHERE oid = to_regclass($1)`, [t])).rows[0]?.p;
      for (const t of ['mirror_builds', 'mirror_rows', 'mirror_people', 'mirror_attributes', 'mirror_events', 'mirror_touched', 'mirror_touched_events', 'mirror_work', 'audience_candidates'])
        expect(`${t}: ${await persistence(t)}`).toBe(`${t}: u`);
      for (const t of ['snapshot_entries', 'snapshot_payloads', 'snapshot_changes', 'audience_members', 'cursors']) expect(`${t}: ${await persistence(t)}`).toBe(`${t}: p`);
      // Room on each page of the attribute values and key records, for updates that stay on their row's page (migration 13).
      for (const t of ['mirror_attributes', 'mirror_rows']) expect((await db.query<{ o: string[] | null }>(`SELECT reloptions AS o FROM pg_class WHERE oid = to_regclass($1)`, [t])).rows[0]?.o).toEqual(['fillfactor=90']);
      // What crash recovery does to the schema: every unlogged table emptied.
      const unlogged = (await db.query<{ t: string }>(`SELECT relname AS t FROM pg_class WHERE relnamespace = to_regnamespace($1) AND relkind = 'r' AND relpersistence = 'u'`, [location.schema!])).rows.map((r) => r.t);
      expect(unlogged).toContain('mirror_builds');
      await db.query(`TRUNCATE ${unlogged.join(', ')}`);
    } finally {
      await db.end();
    }

    // Every odd and even person is gold now: members are i % 12 in {0, 3, 6}; 3 stay, 0 and 6 enter.
    await writeFile(path.join(dir, 'data', 'customers.ndjson'), people(() => true));
    await run(['sync', 'run']);
    const entering = upTo400.filter((i) => i % 12 === 0 || i % 12 === 6).length;
    const out = await run(['audiences', 'run']);
    expect(out).toMatch(new RegExp(`gold_returners: ${34 + entering} members`));
    expect(out).toMatch(new RegExp(`\\+${entering}\\b`));
    expect(members()).toEqual(upTo400.filter((i) => [0, 3, 6].includes(i % 12)));
  }, 180_000);
});
