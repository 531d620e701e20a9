/**
 * The plan as a sticky pull-request comment. A pure function of the Plan JSON. Every value from a service
 * or a spec is escaped for the place it lands in (table cell, HTML, code span, fenced block), and the
 * comment is cut to fit GitHub's size limit without ever breaking a code block.
 */
import { assertNever } from '../../core/assert-never.ts';
import { compareDiagnostics } from '../../core/diagnostics.ts';
import type { Change, DataImpact, Plan } from '../plan.ts';
import {
  attributeLines,
  countChanges,
  describeDeletes,
  escapeControls,
  formatCounts,
  formatPlanSummary,
  describeScope,
  formatSpecsRevision,
  formatValue,
  isListed,
  plural,
} from './text.ts';

export interface MarkdownOptions {
  /** Longest comment to produce, in UTF-16 code units (JS string length). GitHub refuses comments over 65536. */
  maxLength?: number;
}

export const DEFAULT_MARKDOWN_MAX_LENGTH = 60_000;

/**
 * The hidden first line a bot searches for to update its own comment instead of adding another.
 * The environment is percent-encoded so no name can end the HTML comment early.
 */
export function planCommentMarker(environment: string): string {
  return `<!-- tidemark-plan environment=${encodeURIComponent(environment)} -->`;
}

/**
 * The plan as GitHub-flavoured markdown, at most `maxLength` long. When it would be longer, per-change
 * `<details>` blocks are dropped from the end (then, for very large plans, table rows and diagnostics), and
 * a line says how many were left out and that the full plan is in the run's artifact.
 */
export function renderPlanMarkdown(plan: Plan, opts: MarkdownOptions = {}): string {
  const maxLength = opts.maxLength ?? DEFAULT_MARKDOWN_MAX_LENGTH;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
  return fit(buildParts(plan), maxLength);
}

/** Every piece of the comment, each a run of complete lines ending in `\n`. */
interface Parts {
  head: string;
  /** Table rows; `rowsHead` is the table header, or the "no changes" paragraph when there are no rows. */
  rowsHead: string;
  rows: string[];
  details: string[];
  diagnosticsHead: string;
  diagnostics: string[];
  tail: string;
}

const ARTIFACT = "the full plan is in the run's artifact";
const rowsNote = (omitted: number, total: number) =>
  omitted > 0 ? `\n_${omitted} of ${total} changes not listed to keep this comment under GitHub's size limit; ${ARTIFACT}._\n` : '';
const detailsNote = (omitted: number, total: number) =>
  omitted > 0 ? `_${omitted} of ${total} change details omitted to keep this comment under GitHub's size limit; ${ARTIFACT}._\n\n` : '';
const diagnosticsNote = (omitted: number) =>
  omitted > 0 ? `\n_${plural(omitted, 'more diagnostic')} not listed to keep this comment under GitHub's size limit; ${ARTIFACT}._\n` : '';
const CUT_NOTE = `\n_Plan cut short to keep this comment under GitHub's size limit; ${ARTIFACT}._\n`;

function fit(parts: Parts, maxLength: number): string {
  const prefix = (items: readonly string[]) => {
    const sums = [0];
    for (const item of items) sums.push(sums[sums.length - 1]! + item.length);
    return sums;
  };
  const [rowSums, detailSums, diagnosticSums] = [prefix(parts.rows), prefix(parts.details), prefix(parts.diagnostics)];
  const [rowCount, detailCount, diagnosticCount] = [parts.rows.length, parts.details.length, parts.diagnostics.length];
  // Mirrors assemble() exactly, so each candidate is measured without building it.
  const measure = (rows: number, details: number, diagnostics: number) =>
    parts.head.length +
    parts.rowsHead.length +
    rowSums[rows]! +
    rowsNote(rowCount - rows, rowCount).length +
    1 +
    detailSums[details]! +
    detailsNote(detailCount - details, detailCount).length +
    (diagnosticCount > 0 ? parts.diagnosticsHead.length + diagnosticSums[diagnostics]! + diagnosticsNote(diagnosticCount - diagnostics).length + 1 : 0) +
    parts.tail.length;

  // Details go first, from the end: the table still names every change and its reason.
  for (let keep = detailCount; keep >= 0; keep--) {
    if (measure(rowCount, keep, diagnosticCount) <= maxLength) return assemble(parts, rowCount, keep, diagnosticCount);
  }
  // No code block is left from here on, so any line is a safe place to cut.
  for (let keep = rowCount - 1; keep >= 0; keep--) {
    if (measure(keep, 0, diagnosticCount) <= maxLength) return assemble(parts, keep, 0, diagnosticCount);
  }
  for (let keep = diagnosticCount - 1; keep >= 0; keep--) {
    if (measure(0, 0, keep) <= maxLength) return assemble(parts, 0, 0, keep);
  }
  // Even the skeleton is too long (a tiny limit, a huge environment name or data impact): keep whole lines.
  let out = '';
  for (const line of assemble(parts, 0, 0, 0).split(/(?<=\n)/)) {
    if (out.length + line.length + CUT_NOTE.length > maxLength) break;
    out += line;
  }
  return out.length + CUT_NOTE.length <= maxLength ? out + CUT_NOTE : out;
}

function assemble(parts: Parts, rows: number, details: number, diagnostics: number): string {
  let out = parts.head + parts.rowsHead + parts.rows.slice(0, rows).join('') + rowsNote(parts.rows.length - rows, parts.rows.length);
  out += '\n' + parts.details.slice(0, details).join('') + detailsNote(parts.details.length - details, parts.details.length);
  if (parts.diagnostics.length > 0) {
    out += parts.diagnosticsHead + parts.diagnostics.slice(0, diagnostics).join('') + diagnosticsNote(parts.diagnostics.length - diagnostics) + '\n';
  }
  return out + parts.tail;
}

function buildParts(plan: Plan): Parts {
  const counts = countChanges(plan);
  const listed = plan.changes.filter(isListed);
  const environment = mdText(plan.environment);
  const pending = plan.changes.length - counts.noop;

  let head = `${planCommentMarker(plan.environment)}\n`;
  head += pending > 0 ? `## Plan for ${environment}: ${formatCounts(counts)}, ${counts.noop} unchanged\n\n` : `## Plan for ${environment}: no changes\n\n`;

  head += plan.target.mode === 'sandbox'
    ? `> [!NOTE]\n> Planned against ${mdText(plan.target.label)}, not the live services.\n\n`
    : `Against: ${mdText(plan.target.label)}\n\n`;
  const deletes = describeDeletes(plan);
  if (deletes) {
    const addresses = plan.changes.filter((c) => c.action === 'delete' || c.action === 'replace').map((c) => codeSpan(c.address));
    const shown = addresses.length > 10 ? `${addresses.slice(0, 10).join(', ')} and ${addresses.length - 10} more` : addresses.join(', ');
    head += `> [!WARNING]\n> ${mdText(deletes.replace(/\.$/, ''))}: ${shown}.\n\n`;
  }
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  if (errors > 0) head += `> [!CAUTION]\n> The plan has ${plural(errors, 'error')}; see Diagnostics below.\n\n`;
  const scope = describeScope(plan);
  if (scope) head += `Scope: ${mdText(scope)}.\n\n`;
  else if (plan.options.targets.length > 0) {
    head += `Targeted plan: only ${plan.options.targets.map((t) => codeSpan(t)).join(', ')} and what they depend on.\n\n`;
  }

  const rowsHead = listed.length > 0 ? '| Action | Address | Reason |\n| --- | --- | --- |\n' : `${mdText(formatPlanSummary(plan))}\n`;
  const rows = listed.map((c) => `| ${actionCell(c)} | ${codeSpan(c.address, true)} | ${reasonCell(c)} |\n`);
  const details = listed.map(detailsBlock);

  const diagnostics = [...plan.diagnostics].sort(compareDiagnostics).map((d) => {
    const where = d.source ? ` ${mdText(`${d.source.file}:${d.source.start.line}`)}` : d.address !== undefined ? ` ${codeSpan(d.address)}` : '';
    const text = [d.summary, d.detail].filter(Boolean).join(' ');
    return `- **${d.severity}** ${codeSpan(d.code)}${where}: ${mdText(text)}\n`;
  });

  let tail = `### Data impact\n\n${dataImpact(plan.data_impact)}\n`;
  const footer = [
    `specs ${mdText(formatSpecsRevision(plan.specs))}`,
    `live digest ${mdText(shortDigest(plan.live.digest))}`,
    `created ${mdText(plan.created_at)}`,
    `format_version ${mdText(String(plan.format_version))}`,
    `${mdText(plan.tool.name)} ${mdText(plan.tool.version)}`,
  ].join(' · ');
  tail += `---\n\n<sub>${footer}</sub>\n`;

  return { head, rowsHead, rows, details, diagnosticsHead: '### Diagnostics\n\n', diagnostics, tail };
}

function actionLabel(change: Change): string {
  switch (change.action) {
    case 'create':
    case 'update':
    case 'delete':
    case 'import':
    case 'forget':
      return change.action;
    case 'replace':
      return change.create_before_destroy ? 'replace (create first)' : 'replace (delete first)';
    case 'noop':
      return 'no change';
    default:
      return assertNever(change.action);
  }
}

function actionCell(change: Change): string {
  return change.blocked ? `${actionLabel(change)}, **blocked**` : actionLabel(change);
}

function reasonCell(change: Change): string {
  const parts = [mdText(change.reason)];
  if (change.moved_from !== undefined) parts.push(`renamed from ${codeSpan(change.moved_from, true)}`);
  if (change.ignored_changes?.length) {
    parts.push(`cannot be changed in place, not applied: ${change.ignored_changes.map((a) => codeSpan(a, true)).join(', ')}`);
  }
  if (change.blocked) parts.push(`**blocked (${mdText(change.blocked.code)}), will not be applied:** ${mdText(change.blocked.message)}`);
  return parts.join('; ');
}

function detailsBlock(change: Change): string {
  const remote = change.remote_id !== undefined ? ` (id <code>${htmlText(change.remote_id)}</code>)` : '';
  const blocked = change.blocked ? ', blocked' : '';
  let out = `<details><summary>${htmlText(actionLabel(change))}${blocked} <code>${htmlText(change.address)}</code>${remote}</summary>\n\n`;
  if (change.moved_from !== undefined) out += `Renamed from ${codeSpan(change.moved_from)}.\n\n`;
  if (change.blocked) out += `**Blocked, will not be applied** (${codeSpan(change.blocked.code)}): ${mdText(change.blocked.message)}\n\n`;
  const lines: string[] = [];
  for (const a of attributeLines(change)) {
    const name = escapeControls(a.name);
    const notes = [a.forcesReplacement ? 'forces replacement' : '', a.ignored ? 'cannot be changed in place; not applied' : ''].filter(Boolean);
    const suffix = notes.length ? `  # ${notes.join('; ')}` : '';
    if (a.op === 'add') lines.push(`+ ${name}: ${formatValue(a.after)}${suffix}`);
    else if (a.op === 'remove') lines.push(`- ${name}: ${formatValue(a.before)}${suffix}`);
    else {
      const hasAfter = a.after !== undefined;
      if (a.before !== undefined) lines.push(`- ${name}: ${formatValue(a.before)}${hasAfter ? '' : suffix}`);
      if (hasAfter || a.before === undefined) lines.push(`+ ${name}: ${formatValue(a.after)}${suffix}`);
    }
  }
  if (lines.length > 0) {
    const fence = '`'.repeat(Math.max(3, longestRun(lines.join('\n'), '`') + 1));
    out += `${fence}diff\n${lines.join('\n')}\n${fence}\n\n`;
  } else {
    out += '_No attribute changes._\n\n';
  }
  return `${out}</details>\n\n`;
}

type ImpactSource = DataImpact['sources'][number];
type ImpactAudience = DataImpact['audiences'][number];
type ImpactSurvey = NonNullable<DataImpact['surveys']>[number];

const cell = (x: number) => mdText(String(x));

/**
 * The data-impact tables' columns, once: the plan's markdown and the pull request comment (which
 * collapses the rows that move nothing) both render rows through these, so a column added here reaches both.
 */
export const IMPACT_TABLES = {
  sources: {
    header: '| Source | New | Changed | Unchanged | Rejected | Blocked nulls |\n| --- | ---: | ---: | ---: | ---: | ---: |\n',
    row: (s: ImpactSource) => `| ${mdText(s.name)} | ${[s.new, s.changed, s.unchanged, s.rejected, s.null_blocked].map(cell).join(' | ')} |\n`,
  },
  audiences: {
    header: '| Audience | Joining | Leaving |\n| --- | ---: | ---: |\n',
    row: (a: ImpactAudience) => `| ${mdText(a.name)}${a.held ? ` (held: ${mdText(a.held)})` : ''} | ${cell(a.joining)} | ${cell(a.leaving)} |\n`,
  },
  surveys: {
    header:
      '| Survey target | Would invite | Held out | In window | Already invited | Capped | Opted out | Bounced | No email | Claimed | Waiting |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n',
    row: (t: ImpactSurvey) =>
      `| ${mdText(t.name)} | ${[t.would_invite, t.held_out, t.in_window, t.already_invited, t.capped, t.opted_out, t.bounced ?? 0, t.no_email, t.claimed_by_other, t.waiting].map(cell).join(' | ')} |\n`,
  },
};

function dataImpact(impact: DataImpact): string {
  if (impact.status === 'not_computed') return `Not computed${impact.note ? `: ${mdText(impact.note)}` : ''}.\n`;
  const surveys = impact.surveys ?? [];
  if (impact.sources.length === 0 && impact.audiences.length === 0 && surveys.length === 0) return 'No source rows or audience members change.\n';
  const tables: string[] = [];
  if (impact.sources.length > 0) tables.push(IMPACT_TABLES.sources.header + impact.sources.map(IMPACT_TABLES.sources.row).join(''));
  if (impact.audiences.length > 0) tables.push(IMPACT_TABLES.audiences.header + impact.audiences.map(IMPACT_TABLES.audiences.row).join(''));
  if (surveys.length > 0) tables.push(IMPACT_TABLES.surveys.header + surveys.map(IMPACT_TABLES.surveys.row).join(''));
  return tables.join('\n');
}

/** First 12 hex digits of a digest, with or without an `algorithm:` prefix. */
function shortDigest(digest: string): string {
  return digest.slice(digest.lastIndexOf(':') + 1).slice(0, 12);
}

/**
 * Inline markdown text: one line, no HTML, no emphasis/link/strikethrough/table syntax, and no @mentions
 * (a zero-width space after `@`, as Renovate does, so a service string cannot ping people).
 */
export function mdText(s: string): string {
  return escapeControls(s)
    .replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'))
    .replace(/[\\`*[\]|~]/g, (c) => `\\${c}`)
    // An underscore inside a word never starts emphasis in GFM: escaping only the others keeps snake_case readable.
    .replace(/(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu, '\\_')
    .replace(/@/g, '@&#8203;');
}

/**
 * A code span that survives backticks in the value. `inTable` escapes `|`, which GFM splits cells on even
 * inside code. GFM reads `\\` as an escaped backslash before it looks for pipes, so a backslash right before
 * a pipe would un-escape it: such a value is written as escaped text instead.
 */
export function codeSpan(s: string, inTable = false): string {
  let text = escapeControls(s);
  if (text === '') return '(empty)';
  if (inTable && text.includes('\\|')) return mdText(s);
  if (inTable) text = text.replace(/\|/g, '\\|');
  const ticks = '`'.repeat(longestRun(text, '`') + 1);
  const pad = text.startsWith('`') || text.endsWith('`') || (text.startsWith(' ') && text.endsWith(' ') && text.trim() !== '') ? ' ' : '';
  return `${ticks}${pad}${text}${pad}${ticks}`;
}

function htmlText(s: string): string {
  return escapeControls(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function longestRun(s: string, ch: string): number {
  let best = 0;
  let run = 0;
  for (const c of s) {
    run = c === ch ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}
