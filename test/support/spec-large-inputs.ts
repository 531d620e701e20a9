/**
 * Generators for the large spec sets of issue 8 (validation must stay fast, with bounded output), shared
 * by the output tests in test/spec and the timings in test/bench/validate.bench.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SpecFile } from '../../reconciler/spec/validate.ts';

const base: SpecFile = {
  path: 'specs/workspace.yaml',
  text: readFileSync(path.resolve(import.meta.dirname, '../fixtures/specs/_base/workspace.yaml'), 'utf8'),
};

/** `count` segments in one exclusive group whose conditions never keep them apart: every pair overlaps. */
export function overlappingGroup(count: number): SpecFile[] {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    docs.push(`kind: Segment\nname: seg_${i}\nexclusive_group: tiers\nconditions: { attribute: { field: order_count, op: gte, value: ${i} } }\n`);
  }
  return [base, { path: 'specs/segments.yaml', text: docs.join('---\n') }];
}

/** `count` segments in one exclusive group, pairwise disjoint (each matches one value of one field). */
export function disjointGroup(count: number): SpecFile[] {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    docs.push(`kind: Segment\nname: seg_${i}\nexclusive_group: tiers\nconditions: { attribute: { field: vip_tier, op: eq, value: t${i} } }\n`);
  }
  return [base, { path: 'specs/segments.yaml', text: docs.join('---\n') }];
}

/** One segment with `count` keys the schema does not know. */
export function unknownKeys(count: number): SpecFile[] {
  const lines = ['kind: Segment', 'name: typos', 'conditions: { attribute: { field: order_count, op: gt, value: 1 } }'];
  for (let i = 0; i < count; i++) lines.push(`extra_key_${i}: ${i}`);
  return [base, { path: 'specs/typos.yaml', text: `${lines.join('\n')}\n` }];
}

/** `count` documents (segments) in one file, all valid. */
export function manyDocuments(count: number): SpecFile[] {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    docs.push(`kind: Segment\nname: seg_${i}\ndescription: segment number ${i}\nconditions: { attribute: { field: order_count, op: gt, value: ${i} } }\n`);
  }
  return [base, { path: 'specs/segments.yaml', text: docs.join('---\n') }];
}
