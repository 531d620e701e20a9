/**
 * The plan as it is posted on a pull request. Pure: a function of the Plan JSON.
 *
 * It is the plan's markdown (plan/render/markdown.ts: config changes, each escaped for where it lands),
 * uncut, because comments.ts splits a long plan into parts rather than dropping the tail, with what did
 * not change collapsed: the unchanged objects in one `<details>`, and the data impact's rows that move
 * nothing (0 joining and 0 leaving, nobody to invite) in another under each table. Counts only: a plan
 * holds no customer identifier.
 */
import type { DataImpact, Plan } from '../plan/plan.ts';
import { IMPACT_TABLES, codeSpan, mdText, renderPlanMarkdown } from '../plan/render/markdown.ts';
import { plural } from '../plan/render/text.ts';

export interface PlanCommentOptions {
  /** Paragraphs put after the heading: where and for which commit it was planned, what happens on merge. */
  preamble?: string;
}

export function renderPlanComment(plan: Plan, opts: PlanCommentOptions = {}): string {
  const full = renderPlanMarkdown(plan, { maxLength: Number.MAX_SAFE_INTEGER });
  const impactAt = full.lastIndexOf('\n### Data impact\n');
  const footerAt = full.lastIndexOf('\n---\n');
  const head = impactAt >= 0 ? full.slice(0, impactAt + 1) : full;
  const footer = footerAt >= 0 ? full.slice(footerAt + 1) : '';
  let out = head;
  // After the "## Plan for …" heading (line 2) and its blank line.
  const afterHeading = out.indexOf('\n\n', out.indexOf('\n## ')) + 2;
  if (opts.preamble && afterHeading > 1) out = `${out.slice(0, afterHeading)}${opts.preamble.trimEnd()}\n\n${out.slice(afterHeading)}`;
  const unchanged = plan.changes.filter((c) => c.action === 'noop').map((c) => c.address);
  if (unchanged.length) {
    out += `<details><summary>${plural(unchanged.length, 'unchanged object')}</summary>\n\n${unchanged.map((a) => `- ${codeSpan(a)}\n`).join('')}\n</details>\n\n`;
  }
  out += `### Data impact\n\n${dataImpact(plan.data_impact)}\n`;
  return out + footer;
}

interface Table<T> {
  title: string;
  header: string;
  rows: T[];
  row: (r: T) => string;
  moves: (r: T) => boolean;
  still: string;
}

function table<T>(t: Table<T>): string {
  const moving = t.rows.filter(t.moves);
  const still = t.rows.filter((r) => !t.moves(r));
  let out = '';
  if (moving.length) out += `${t.header}${moving.map(t.row).join('')}\n`;
  else out += `_${t.title}: nothing changes._\n\n`;
  if (still.length) out += `<details><summary>${plural(still.length, t.still)} with nothing to change</summary>\n\n${t.header}${still.map(t.row).join('')}\n</details>\n\n`;
  return out;
}

function dataImpact(impact: DataImpact): string {
  if (impact.status === 'not_computed') return `Not computed${impact.note ? `: ${mdText(impact.note)}` : ''}.\n`;
  const surveys = impact.surveys ?? [];
  if (impact.sources.length === 0 && impact.audiences.length === 0 && surveys.length === 0) return 'No source rows or audience members change.\n';
  let out = impact.note ? `_${mdText(impact.note)}_\n\n` : '';
  if (impact.sources.length) {
    out += table({
      title: 'Sources',
      ...IMPACT_TABLES.sources,
      rows: impact.sources,
      moves: (s) => s.new + s.changed + s.rejected + s.null_blocked > 0,
      still: 'source',
    });
  }
  if (impact.audiences.length) {
    out += table({
      title: 'Audiences',
      ...IMPACT_TABLES.audiences,
      rows: impact.audiences,
      // A held audience is news even when it moves nobody: it publishes nothing until its source is fresh.
      moves: (a) => a.joining + a.leaving > 0 || a.held !== undefined,
      still: 'audience',
    });
  }
  if (surveys.length) {
    out += table({
      title: 'Survey targets',
      ...IMPACT_TABLES.surveys,
      rows: surveys,
      moves: (t) => t.would_invite + t.held_out + t.waiting > 0,
      still: 'survey target',
    });
  }
  return out;
}
