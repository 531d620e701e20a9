import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Change, Plan } from '../plan.ts';
import { codeSpan, mdText, planCommentMarker, renderPlanMarkdown } from './markdown.ts';
import { arbitraryPlan, create, makePlan, remove, replace, representativePlan, reverseKeyOrder, update } from '../../../test/support/plan-fixtures.ts';

const blocked = { code: 'PLAN005', message: 'deletes are only applied with --allow-delete' };

/** Whether every fenced code block is closed (CommonMark: a closing fence is at least as long as the opening one). */
function fencesBalanced(md: string): boolean {
  let open: string | undefined;
  for (const line of md.split('\n')) {
    const fence = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (open === undefined) {
      if (fence) open = fence;
    } else if (fence && fence[0] === open[0] && fence.length >= open.length && line.trim() === fence) {
      open = undefined;
    }
  }
  return open === undefined;
}

/** Cell borders in a table row: pipes not escaped by a backslash. */
const borders = (row: string) => row.match(/(?<!\\)(?:\\\\)*\|/g)?.length ?? 0;

/** Every table row has as many cell borders as its header row. */
function tablesIntact(md: string): boolean {
  let expected: number | undefined;
  for (const line of md.split('\n')) {
    if (!line.startsWith('|')) expected = undefined;
    else if (expected === undefined) expected = borders(line);
    else if (borders(line) !== expected) return false;
  }
  return true;
}

const count = (s: string, needle: string) => s.split(needle).length - 1;
/** Details blocks as markup, not as text that happens to appear inside code. */
const opened = (md: string) => md.split('\n').filter((l) => l.startsWith('<details><summary>')).length;
const closed = (md: string) => md.split('\n').filter((l) => l === '</details>').length;

function manyChanges(n: number, valueLength = 200): Change[] {
  return Array.from({ length: n }, (_, i) =>
    update(`customerio.segment.s${String(i).padStart(4, '0')}`, String(i), { description: 'x'.repeat(valueLength) }, { description: 'y'.repeat(valueLength) }),
  );
}

describe('renderPlanMarkdown', () => {
  it('pins the layout of a representative plan', () => {
    expect(renderPlanMarkdown(representativePlan())).toMatchInlineSnapshot(`
      "<!-- tidemark-plan environment=production -->
      ## Plan for production: 1 to create, 1 to update, 2 to replace, 1 to delete, 1 to import, 1 to forget (1 blocked), 2 unchanged

      Against: Customer.io site 3f2a (us) · Qualtrics iad1, directory POOL_7hNcW3p5YqE2dVu

      > [!WARNING]
      > This plan deletes 3 objects (2 by replacement; 1 blocked, not applied): \`qualtrics.event_subscription.responses\`, \`qualtrics.mailing_list.churn\`, \`customerio.segment.old_promo\`.

      > [!CAUTION]
      > The plan has 1 error; see Diagnostics below.

      | Action | Address | Reason |
      | --- | --- | --- |
      | create | \`customerio.segment.vip_customers\` | declared in the specs, not created yet |
      | import | \`customerio.segment.lapsed\` | adopts the existing unmanaged object "Lapsed" (31); cannot be changed in place, not applied: \`description\` |
      | update | \`qualtrics.mailing_list.nps_q1\` | the specs changed; renamed from \`qualtrics.mailing_list.nps\` |
      | replace (create first) | \`qualtrics.event_subscription.responses\` | topics cannot be changed in place |
      | replace (delete first) | \`qualtrics.mailing_list.churn\` | library_id cannot be changed in place |
      | no change | \`customerio.segment.winback\` | up to date; cannot be changed in place, not applied: \`description\` |
      | delete, **blocked** | \`customerio.segment.old_promo\` | its spec was removed; **blocked (PLAN005), will not be applied:** deletes are only applied with --allow-delete |
      | forget | \`customerio.segment.gone\` | its spec was removed and the object is already gone; only the state entry is removed |

      <details><summary>create <code>customerio.segment.vip_customers</code></summary>

      \`\`\`diff
      + description: "Top 5% by lifetime value"
      + name: "VIP customers"
      \`\`\`

      </details>

      <details><summary>import <code>customerio.segment.lapsed</code> (id <code>31</code>)</summary>

      \`\`\`diff
      - description: ""
      + description: "No order in 120 days"  # cannot be changed in place; not applied
      \`\`\`

      </details>

      <details><summary>update <code>qualtrics.mailing_list.nps_q1</code> (id <code>CG_1a2B</code>)</summary>

      Renamed from \`qualtrics.mailing_list.nps\`.

      \`\`\`diff
      - name: "NPS Q1"
      + name: "NPS Q1 2026"
      \`\`\`

      </details>

      <details><summary>replace (create first) <code>qualtrics.event_subscription.responses</code> (id <code>SUB_9</code>)</summary>

      \`\`\`diff
      - topics: ["surveyengine.completedResponse.SV_1"]
      + topics: ["surveyengine.completedResponse.SV_2"]  # forces replacement
      \`\`\`

      </details>

      <details><summary>replace (delete first) <code>qualtrics.mailing_list.churn</code> (id <code>CG_77</code>)</summary>

      \`\`\`diff
      - library_id: "UR_1"
      + library_id: "UR_2"  # forces replacement
      \`\`\`

      </details>

      <details><summary>no change <code>customerio.segment.winback</code> (id <code>12</code>)</summary>

      \`\`\`diff
      - description: "old"
      + description: "new"  # cannot be changed in place; not applied
      \`\`\`

      </details>

      <details><summary>delete, blocked <code>customerio.segment.old_promo</code> (id <code>7</code>)</summary>

      **Blocked, will not be applied** (\`PLAN005\`): deletes are only applied with --allow-delete

      \`\`\`diff
      - description: "Spring 2025"
      - name: "Old promo"
      \`\`\`

      </details>

      <details><summary>forget <code>customerio.segment.gone</code> (id <code>8</code>)</summary>

      \`\`\`diff
      - description: ""
      - name: "Gone"
      \`\`\`

      </details>

      ### Diagnostics

      - **error** \`PROV010\` \`qualtrics.mailing_list.nps_q1\`: Qualtrics refused to list directories (403).
      - **warning** \`SEG004\` specs/segments.yaml:12: Segment vip_customers has no freshness guard. Add freshness_guard so stale sources suppress members.

      ### Data impact

      | Source | New | Changed | Unchanged | Rejected | Blocked nulls |
      | --- | ---: | ---: | ---: | ---: | ---: |
      | shopify_orders | 120 | 14 | 20480 | 2 | 1 |
      | recharge_subscriptions | 0 | 3 | 900 | 0 | 0 |

      | Audience | Joining | Leaving |
      | --- | ---: | ---: |
      | vip_customers | 40 | 5 |

      ---

      <sub>specs 4f2a9c1 + uncommitted changes · live digest 0123456789ab · created 2026-03-01T09:30:00.000Z · format_version 1 · tidemark 0.1.0</sub>
      "
    `);
  });

  it('renders an empty plan as no changes', () => {
    expect(renderPlanMarkdown(makePlan([]))).toMatchInlineSnapshot(`
      "<!-- tidemark-plan environment=production -->
      ## Plan for production: no changes

      Against: Customer.io site 3f2a (us) · Qualtrics iad1, directory POOL_7hNcW3p5YqE2dVu

      No changes. Live Customer.io and Qualtrics match the specs.

      ### Data impact

      Not computed: run \\\`tidemark sync plan\\\` for row counts.

      ---

      <sub>specs 4f2a9c1 · live digest 0123456789ab · created 2026-03-01T09:30:00.000Z · format_version 1 · tidemark 0.1.0</sub>
      "
    `);
  });

  it('starts with a marker a bot can find, which no environment name can break out of', () => {
    expect(renderPlanMarkdown(makePlan([])).split('\n')[0]).toBe('<!-- tidemark-plan environment=production -->');
    const marker = planCommentMarker('prod --> <b>x</b>');
    expect(marker).toBe('<!-- tidemark-plan environment=prod%20--%3E%20%3Cb%3Ex%3C%2Fb%3E -->');
    expect(renderPlanMarkdown(makePlan([], { environment: 'prod --> <b>x</b>' })).startsWith(`${marker}\n`)).toBe(true);
  });

  it('warns about deletes in a callout naming what goes, and only then', () => {
    const del = renderPlanMarkdown(makePlan([remove('customerio.segment.b', '2', { name: 'B' }, { blocked }), create('customerio.segment.a', { name: 'A' })]));
    expect(del).toContain('> [!WARNING]\n> This plan deletes 1 object (1 blocked, not applied): `customerio.segment.b`.\n');
    expect(renderPlanMarkdown(makePlan([create('customerio.segment.a', { name: 'A' })]))).not.toContain('[!WARNING]');
  });

  it('says when the plan was limited to targets', () => {
    const md = renderPlanMarkdown(makePlan([], { options: { allow_delete: false, adopt_by_name: false, targets: ['customerio.segment.a'] } }));
    expect(md).toContain('\nTargeted plan: only `customerio.segment.a` and what they depend on.\n');
  });

  it('marks blocked changes in the table and in their details', () => {
    const md = renderPlanMarkdown(makePlan([remove('customerio.segment.b', '2', { name: 'B' }, { blocked, reason: 'its spec was removed' })]));
    expect(md).toContain(
      '| delete, **blocked** | `customerio.segment.b` | its spec was removed; **blocked (PLAN005), will not be applied:** deletes are only applied with --allow-delete |',
    );
    expect(md).toContain('<details><summary>delete, blocked <code>customerio.segment.b</code> (id <code>2</code>)</summary>');
  });

  it('labels replace order without emoji', () => {
    const before = { library_id: 'UR_1' };
    const after = { library_id: 'UR_2' };
    const md = renderPlanMarkdown(
      makePlan([
        replace('qualtrics.mailing_list.a', 'CG_1', before, after, { requires_replace: ['library_id'], create_before_destroy: true }),
        replace('qualtrics.mailing_list.b', 'CG_2', before, after, { requires_replace: ['library_id'] }),
      ]),
    );
    expect(md).toContain('| replace (create first) | `qualtrics.mailing_list.a` |');
    expect(md).toContain('| replace (delete first) | `qualtrics.mailing_list.b` |');
    expect(md).toContain('- library_id: "UR_1"\n+ library_id: "UR_2"  # forces replacement\n');
    expect(md).not.toMatch(/\p{Extended_Pictographic}/u);
  });

  it('keeps hostile service strings inside their table cell and out of the markup', () => {
    const md = renderPlanMarkdown(
      makePlan([
        update('customerio.segment.x', '1', { name: 'a' }, { name: '</details><script>|```' }, { reason: 'a | b <img src=x> `tick` @octocat *bold* [l](u)' }),
      ]),
    );
    const row = md.split('\n').find((l) => l.includes('customerio.segment.x') && l.startsWith('|'))!;
    expect(borders(row)).toBe(4);
    expect(row).toContain('a \\| b &lt;img src=x&gt; \\`tick\\` @&#8203;octocat \\*bold\\* \\[l\\](u)');
    expect(md).not.toContain('<script>\n');
    expect(md).not.toContain('<img');
    expect(opened(md)).toBe(1);
    expect(closed(md)).toBe(1);
    // The value sits in a longer fence than any backtick run inside it.
    expect(md).toContain('````diff\n- name: "a"\n+ name: "</details><script>|```"\n````\n');
    expect(fencesBalanced(md)).toBe(true);
  });

  it('escapes emphasis underscores but leaves snake_case alone', () => {
    expect(mdText('_a_ snake_case __init__ x_')).toBe('\\_a\\_ snake_case \\_\\_init\\_\\_ x\\_');
    expect(mdText('a\\b & c')).toBe('a\\\\b &amp; c');
  });

  it('pads code spans whose value starts or ends with a backtick, and escapes pipes only in tables', () => {
    expect(codeSpan('`x')).toBe('`` `x ``');
    expect(codeSpan('a|b')).toBe('`a|b`');
    expect(codeSpan('a|b', true)).toBe('`a\\|b`');
    expect(codeSpan('a\\|b', true)).toBe('a\\\\\\|b');
  });

  it('quotes addresses with backticks in a code span that holds them', () => {
    const md = renderPlanMarkdown(makePlan([create('customerio.segment.a`b', { name: 'A' })]));
    expect(md).toContain('| create | ``customerio.segment.a`b`` |');
  });

  it('lists diagnostics with file:line and no links', () => {
    const md = renderPlanMarkdown(
      makePlan([], {
        diagnostics: [{ severity: 'warning', code: 'SEG004', summary: 'No guard.', detail: 'Add one.', source: { file: 'specs/s.yaml', start: { line: 12, col: 3 }, end: { line: 12, col: 9 } } }],
      }),
    );
    expect(md).toContain('### Diagnostics\n\n- **warning** `SEG004` specs/s.yaml:12: No guard. Add one.\n');
    expect(md).not.toContain('](');
  });

  it('shows computed data impact as count tables', () => {
    const md = renderPlanMarkdown(
      makePlan([], {
        data_impact: { status: 'computed', sources: [{ name: 'orders', new: 1, changed: 2, unchanged: 3, rejected: 4, null_blocked: 5 }], audiences: [{ name: 'vip', joining: 6, leaving: 7 }] },
      }),
    );
    expect(md).toContain('| orders | 1 | 2 | 3 | 4 | 5 |\n');
    expect(md).toContain('| vip | 6 | 7 |\n');
  });

  it('ends with a footer naming specs revision, live digest, creation time and format version', () => {
    const md = renderPlanMarkdown(makePlan([]));
    expect(md.trimEnd().split('\n').at(-1)).toBe(
      '<sub>specs 4f2a9c1 · live digest 0123456789ab · created 2026-03-01T09:30:00.000Z · format_version 1 · tidemark 0.1.0</sub>',
    );
  });

  it('renders equal plans byte-identically whatever the key insertion order', () => {
    const plan = representativePlan();
    expect(renderPlanMarkdown(reverseKeyOrder(plan))).toBe(renderPlanMarkdown(plan));
  });

  describe('size limit', () => {
    const plan = makePlan(manyChanges(400));
    const full = renderPlanMarkdown(plan, { maxLength: 10_000_000 });

    it('leaves a comment that fits untouched, to the character', () => {
      expect(renderPlanMarkdown(plan, { maxLength: full.length })).toBe(full);
      expect(renderPlanMarkdown(plan, { maxLength: full.length - 1 })).not.toBe(full);
    });

    it('stays under the default limit by dropping details from the end, saying how many', () => {
      expect(full.length).toBeGreaterThan(60_000);
      const md = renderPlanMarkdown(plan);
      expect(md.length).toBeLessThanOrEqual(60_000);
      expect(fencesBalanced(md)).toBe(true);
      const kept = count(md, '<details>');
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(400);
      expect(count(md, '</details>')).toBe(kept);
      // The first ones stay, the last ones go, and every change is still in the table.
      expect(md).toContain('<summary>update <code>customerio.segment.s0000</code>');
      expect(md).not.toContain('<summary>update <code>customerio.segment.s0399</code>');
      expect(md).toContain("| update | `customerio.segment.s0399` |");
      expect(md).toContain(`_${400 - kept} of 400 change details omitted to keep this comment under GitHub's size limit; the full plan is in the run's artifact._`);
      // Diagnostics, data impact and the footer survive.
      expect(md).toContain('### Data impact');
      expect(md).toContain('<sub>specs');
    });

    it('drops table rows too when even the table does not fit', () => {
      const md = renderPlanMarkdown(plan, { maxLength: 8000 });
      expect(md.length).toBeLessThanOrEqual(8000);
      expect(count(md, '<details>')).toBe(0);
      expect(md).toMatch(/_\d+ of 400 changes not listed to keep this comment under GitHub's size limit; the full plan is in the run's artifact\._/);
      expect(md).toContain('_400 of 400 change details omitted');
      expect(md.split('\n')[0]).toBe('<!-- tidemark-plan environment=production -->');
    });

    it('drops one huge change detail rather than cutting its code block', () => {
      const huge = makePlan([create('customerio.segment.a', { name: 'A' }), create('customerio.segment.b', { description: '`'.repeat(5000) + 'z'.repeat(80_000) })]);
      const md = renderPlanMarkdown(huge);
      expect(md.length).toBeLessThanOrEqual(60_000);
      expect(count(md, '<details>')).toBe(1);
      expect(md).toContain('<summary>create <code>customerio.segment.a</code>');
      expect(md).toContain('_1 of 2 change details omitted');
      expect(fencesBalanced(md)).toBe(true);
    });

    it('cuts whole lines as a last resort and never exceeds the limit', () => {
      const md = renderPlanMarkdown(plan, { maxLength: 150 });
      expect(md.length).toBeLessThanOrEqual(150);
      expect(md.endsWith("_Plan cut short to keep this comment under GitHub's size limit; the full plan is in the run's artifact._\n")).toBe(true);
      expect(renderPlanMarkdown(plan, { maxLength: 10 })).toBe('');
    });

    it('rejects a limit that is not a positive integer', () => {
      expect(() => renderPlanMarkdown(plan, { maxLength: 0 })).toThrow(RangeError);
      expect(() => renderPlanMarkdown(plan, { maxLength: 1.5 })).toThrow(RangeError);
    });
  });

  it('never throws on random plans, stays within the limit and keeps fences and details balanced', () => {
    fc.assert(
      fc.property(arbitraryPlan(), fc.integer({ min: 1, max: 20_000 }), (plan: Plan, maxLength) => {
        const md = renderPlanMarkdown(plan, { maxLength });
        expect(md.length).toBeLessThanOrEqual(maxLength);
        expect(fencesBalanced(md)).toBe(true);
        expect(opened(md)).toBe(closed(md));
        expect(md).not.toContain('\u001b');
        expect(renderPlanMarkdown(reverseKeyOrder(plan), { maxLength })).toBe(md);
        const roomy = renderPlanMarkdown(plan);
        expect(roomy.startsWith(`${planCommentMarker(plan.environment)}\n`)).toBe(true);
        expect(tablesIntact(roomy)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
