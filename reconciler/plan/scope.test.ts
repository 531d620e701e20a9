import { describe, expect, it } from 'vitest';
import type { DesiredResource } from './desired.ts';
import type { StateEntry } from './diff.ts';
import { selectChangedScope, type ChangedSpecFile, type ScopeInput } from './scope.ts';

const SEGMENTS = `kind: Segment
name: vip
description: Gold and platinum.
---
kind: Segment
name: winback
description: Lapsed.
`;
const TARGETS = `kind: SurveyTarget
name: fit
mailing_list: { name: "fit list" }
`;

/** Desired objects as the kinds derive them: a segment per Segment document, a list and its webhook per target. */
function desired(over: Partial<Record<string, Partial<DesiredResource>>> = {}): DesiredResource[] {
  const at = (file: string, line: number) => ({ file, start: { line, col: 1 }, end: { line, col: 5 } });
  const list: DesiredResource[] = [
    { address: { provider: 'customerio', type: 'segment', name: 'vip' }, attributes: { name: 'tidemark: vip' }, dependsOn: [], source: at('specs/segments.yaml', 2), preventDestroy: false },
    { address: { provider: 'customerio', type: 'segment', name: 'winback' }, attributes: { name: 'tidemark: winback' }, dependsOn: [], source: at('specs/segments.yaml', 6), preventDestroy: false },
    { address: { provider: 'qualtrics', type: 'mailing_list', name: 'fit' }, attributes: { name: 'fit list', directory_id: 'POOL_1' }, dependsOn: [], source: at('specs/surveys.yaml', 2), preventDestroy: false },
    {
      address: { provider: 'qualtrics', type: 'event_subscription', name: 'fit' },
      attributes: { publication_url: 'https://hooks.example/a' },
      dependsOn: [{ provider: 'qualtrics', type: 'mailing_list', name: 'fit' }],
      source: at('specs/surveys.yaml', 2),
      preventDestroy: false,
    },
  ];
  return list.map((d) => ({ ...d, ...(over[`${d.address.provider}.${d.address.type}.${d.address.name}`] ?? {}) }));
}

const stateOf = (d: DesiredResource[]): StateEntry[] =>
  d.map((x) => ({
    address: `${x.address.provider}.${x.address.type}.${x.address.name}`,
    kind: `${x.address.provider}.${x.address.type}`,
    remoteId: `id-${x.address.name}`,
    attributes: x.attributes,
    dependsOn: x.dependsOn.map((a) => `${a.provider}.${a.type}.${a.name}`),
    preventDestroy: false,
  }));

function scope(files: ChangedSpecFile[], over: Partial<ScopeInput> = {}) {
  const d = desired();
  return selectChangedScope({ base: { ref: 'origin/main', commit: 'a'.repeat(40) }, files, desired: d, baseDesired: d, state: stateOf(d), ...over });
}

describe('selectChangedScope', () => {
  it('plans only the object whose document changed, not its neighbours in the same file', () => {
    const s = scope([{ path: 'specs/segments.yaml', base: SEGMENTS, current: SEGMENTS.replace('Gold and platinum.', 'Gold only.') }]);
    expect(s.targets).toEqual(['customerio.segment.vip']);
    expect(s.reasons).toEqual({ 'customerio.segment.vip': 'Segment vip changed (specs/segments.yaml)' });
    expect(s.summary).toMatchObject({
      mode: 'changed',
      reason: 'changed since origin/main (merge base aaaaaaaaaaaa)',
      changed_files: ['specs/segments.yaml'],
      changed_documents: ['Segment.vip'],
      total: 4,
    });
  });

  it('plans nothing for a comment-only or reordering edit', () => {
    const reordered = SEGMENTS.split('---\n').reverse().join('---\n').replace('kind: Segment\nname: vip', '# a note\nkind: Segment\nname: vip');
    expect(scope([{ path: 'specs/segments.yaml', base: SEGMENTS, current: reordered }]).targets).toEqual([]);
  });

  it('adds the dependants of a changed object (the webhook of a changed mailing list)', () => {
    const s = scope([{ path: 'specs/surveys.yaml', base: TARGETS, current: TARGETS.replace('fit list', 'fit list 2') }]);
    expect(s.targets).toEqual(['qualtrics.event_subscription.fit', 'qualtrics.mailing_list.fit']);
    expect(s.reasons['qualtrics.event_subscription.fit']).toBe('SurveyTarget fit changed (specs/surveys.yaml)');
  });

  it('plans a removed document as a change: its state entry is in, so the delete is planned', () => {
    const now = desired().filter((d) => d.address.name !== 'winback');
    const s = selectChangedScope({
      base: { ref: 'origin/main', commit: 'b'.repeat(40) },
      files: [{ path: 'specs/segments.yaml', base: SEGMENTS, current: SEGMENTS.split('---\n')[0]! }],
      desired: now,
      baseDesired: desired(),
      state: stateOf(desired()),
    });
    expect(s.targets).toEqual(['customerio.segment.winback']);
    expect(s.reasons['customerio.segment.winback']).toBe('its spec was removed');
    expect(s.summary.changed_documents).toEqual(['Segment.winback']);
  });

  it('plans a deleted file as a change too', () => {
    const now = desired().filter((d) => d.address.type === 'segment');
    const s = selectChangedScope({ base: { ref: 'm', commit: 'c'.repeat(40) }, files: [{ path: 'specs/surveys.yaml', base: TARGETS, current: null }], desired: now, baseDesired: desired(), state: stateOf(desired()) });
    expect(s.targets).toEqual(['qualtrics.event_subscription.fit', 'qualtrics.mailing_list.fit']);
  });

  it('plans every object a shared document changed, by comparing what the specs ask at both commits', () => {
    const workspace = 'kind: Workspace\nname: w\nwebhook: a\n';
    const s = scope([{ path: 'specs/workspace.yaml', base: workspace, current: workspace.replace('webhook: a', 'webhook: b') }], {
      desired: desired({ 'qualtrics.event_subscription.fit': { attributes: { publication_url: 'https://hooks.example/b' } } }),
    });
    expect(s.targets).toEqual(['qualtrics.event_subscription.fit']);
    expect(s.reasons['qualtrics.event_subscription.fit']).toBe('what the specs ask of it changed');
  });

  it('plans everything when the Workspace changed and the base specs cannot be compared', () => {
    const workspace = 'kind: Workspace\nname: w\nwebhook: a\n';
    const s = scope([{ path: 'specs/workspace.yaml', base: workspace, current: workspace.replace('a', 'b') }], { baseDesired: undefined });
    expect(s.targets).toHaveLength(4);
  });

  it('plans every object of a file whose documents cannot be told apart (a YAML error at the base)', () => {
    const s = scope([{ path: 'specs/segments.yaml', base: 'kind: Segment\nname: [unclosed\n', current: SEGMENTS }]);
    expect(s.targets).toEqual(['customerio.segment.vip', 'customerio.segment.winback']);
  });

  it('plans a document moved to another file', () => {
    const [vip, winback] = SEGMENTS.split('---\n');
    const s = scope([
      { path: 'specs/segments.yaml', base: SEGMENTS, current: vip! },
      { path: 'specs/winback.yaml', base: null, current: winback! },
    ], { desired: desired({ 'customerio.segment.winback': { source: { file: 'specs/winback.yaml', start: { line: 2, col: 1 }, end: { line: 2, col: 5 } } } }) });
    expect(s.targets).toEqual(['customerio.segment.winback']);
  });
});
