import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Plan } from '../plan/plan.ts';
import { renderPlanComment } from './plan-comment.ts';

const fixture = (name: string) => JSON.parse(readFileSync(path.join(import.meta.dirname, '../../test/fixtures/plans', name, 'plan.json'), 'utf8')) as Plan;

describe('renderPlanComment', () => {
  it('collapses the unchanged objects and keeps the changes open', () => {
    const plan = fixture('update-and-drift');
    const text = renderPlanComment(plan, { preamble: 'Planned for head commit `abc`.' });
    const noops = plan.changes.filter((c) => c.action === 'noop');
    expect(noops.length).toBeGreaterThan(0);
    expect(text.split('\n')[0]).toBe('<!-- tidemark-plan environment=staging -->');
    expect(text).toMatch(/^## Plan for staging: .*\n\nPlanned for head commit `abc`\.\n\n/m);
    expect(text).toContain(`<details><summary>${noops.length} unchanged object${noops.length === 1 ? '' : 's'}</summary>`);
    for (const c of noops) expect(text).toContain(`- \`${c.address}\``);
    expect(text).toContain('| update |');
  });

  it('shows the data impact rows that move people, and collapses those that move nobody', () => {
    const plan: Plan = {
      ...fixture('converged'),
      data_impact: {
        status: 'computed',
        sources: [],
        audiences: [
          { name: 'vip_customers', joining: 12, leaving: 3 },
          { name: 'winback', joining: 0, leaving: 0 },
          { name: 'lapsed', joining: 0, leaving: 0, held: 'source orders is stale' },
        ],
        surveys: [
          { name: 'post_purchase_fit', would_invite: 40, held_out: 4, in_window: 50, already_invited: 6, capped: 0, opted_out: 0, no_email: 0, claimed_by_other: 0, waiting: 0 },
          { name: 'cancel_intent', would_invite: 0, held_out: 0, in_window: 0, already_invited: 0, capped: 0, opted_out: 0, no_email: 0, claimed_by_other: 0, waiting: 0 },
        ],
      },
    };
    const impact = renderPlanComment(plan).split('### Data impact\n')[1]!;
    const [open, collapsed] = impact.split('<details><summary>1 audience with nothing to change</summary>');
    expect(open).toContain('| vip_customers | 12 | 3 |');
    expect(open).toContain('| lapsed (held: source orders is stale) | 0 | 0 |');
    expect(collapsed).toMatch(/^[\s\S]*\| winback \| 0 \| 0 \|[\s\S]*<\/details>/);
    expect(impact).toContain('<details><summary>1 survey target with nothing to change</summary>');
    expect(impact).toMatch(/\| post_purchase_fit \| 40 \| 4 \| 50 \|/);
    expect(impact).toContain('<sub>specs ');
  });

  it('says when nothing at all moves', () => {
    const plan: Plan = { ...fixture('converged'), data_impact: { status: 'computed', sources: [], audiences: [{ name: 'a', joining: 0, leaving: 0 }] } };
    const impact = renderPlanComment(plan).split('### Data impact\n')[1]!;
    expect(impact).toContain('_Audiences: nothing changes._');
    expect(impact).toContain('<details><summary>1 audience with nothing to change</summary>');
  });
});
