/**
 * The plan for people in a terminal, Terraform-like. A pure function of the Plan JSON: the CLI decides
 * colour and passes a Style. Every string that came from a service or a spec goes through
 * `escapeControls`, so a name carrying an escape sequence cannot repaint the terminal.
 *
 * The counting and wording helpers here are shared with the markdown renderer, so both say the same thing.
 */
import { assertNever } from '../../core/assert-never.ts';
import { compareDiagnostics, formatLocation } from '../../core/diagnostics.ts';
import type { Style } from '../../core/style.ts';
import type { Action, AttributeValue, Change, DataImpact, Plan } from '../plan.ts';

/** Changes per action (blocked ones included), plus how many of them are blocked. */
export type PlanCounts = Record<Action, number> & { blocked: number };

export function countChanges(plan: Plan): PlanCounts {
  const counts: PlanCounts = { noop: 0, create: 0, import: 0, update: 0, replace: 0, delete: 0, forget: 0, blocked: 0 };
  for (const c of plan.changes) {
    counts[c.action]++;
    if (c.blocked) counts.blocked++;
  }
  return counts;
}

/**
 * Whether a change gets its own block: every non-noop, and a noop that differs in attributes the service
 * cannot change (reported, never acted on; hiding it would leave the difference invisible for good).
 */
export function isListed(change: Change): boolean {
  return change.action !== 'noop' || (change.ignored_changes?.length ?? 0) > 0;
}

/** `1 to create, 2 to update, 0 to replace, 1 to delete, 0 to import (1 blocked)`; forgets only when there are some. */
export function formatCounts(counts: PlanCounts): string {
  const parts = [
    `${counts.create} to create`,
    `${counts.update} to update`,
    `${counts.replace} to replace`,
    `${counts.delete} to delete`,
    `${counts.import} to import`,
  ];
  if (counts.forget > 0) parts.push(`${counts.forget} to forget`);
  return `${parts.join(', ')}${counts.blocked > 0 ? ` (${counts.blocked} blocked)` : ''}`;
}

/** The last line of the text plan. */
export function formatPlanSummary(plan: Plan): string {
  const counts = countChanges(plan);
  const pending = plan.changes.length - counts.noop;
  if (pending > 0) return `Plan: ${formatCounts(counts)}. ${counts.noop} unchanged.`;
  const errors = plan.diagnostics.filter((d) => d.severity === 'error').length;
  // A failed plan must not claim that everything matches: objects with errors were never compared.
  if (errors > 0) return `No changes planned, but the plan has ${plural(errors, 'error')}: nothing can be applied until they are fixed.`;
  // REF011: a survey no longer reads a field its target sends; the plan cannot fix it, so it must not read as "all match".
  const drifted = new Set(plan.diagnostics.filter((d) => d.code === 'REF011').map((d) => d.address)).size;
  if (drifted > 0) return `No changes to apply, but ${plural(drifted, 'survey target')} drifted from ${drifted === 1 ? 'its survey' : 'their surveys'} in Qualtrics (REF011 above): fix ${drifted === 1 ? 'it' : 'them'} before the next send.`;
  const differing = plan.changes.filter(isListed).length;
  if (differing > 0) {
    return `No changes to apply. ${plural(differing, 'object')} ${differing === 1 ? 'differs' : 'differ'} from the specs in attributes that cannot be changed in place.`;
  }
  return 'No changes. Live Customer.io and Qualtrics match the specs.';
}

/** `This plan deletes 2 objects (1 by replacement; 1 blocked, not applied).`, or undefined when nothing is deleted. */
export function describeDeletes(plan: Plan): string | undefined {
  const deleting = plan.changes.filter((c) => c.action === 'delete' || c.action === 'replace');
  if (deleting.length === 0) return undefined;
  const replaced = deleting.filter((c) => c.action === 'replace').length;
  const blocked = deleting.filter((c) => c.blocked).length;
  const notes: string[] = [];
  if (replaced > 0) notes.push(`${replaced} by replacement`);
  if (blocked > 0) notes.push(`${blocked} blocked, not applied`);
  return `This plan deletes ${plural(deleting.length, 'object')}${notes.length ? ` (${notes.join('; ')})` : ''}.`;
}

/** `0123abc + uncommitted changes`, or a phrase saying the specs are not in git. */
export function formatSpecsRevision(specs: Plan['specs']): string {
  if (specs.revision === null) return specs.dirty ? 'not in git (uncommitted)' : 'not in git';
  return `${escapeControls(specs.revision.slice(0, 7))}${specs.dirty ? ' + uncommitted changes' : ''}`;
}

/**
 * `planned 3 of 14 objects: changed since origin/main (merge base 1a2b3c4d5e6f) in specs/segments.yaml;
 * --full plans everything`, or undefined for a plan made without a scope.
 */
export function describeScope(plan: Plan): string | undefined {
  const s = plan.scope;
  if (!s) return undefined;
  if (s.mode === 'full') return `planned all ${plural(s.total, 'object')}: ${escapeControls(s.reason)}`;
  const files = s.changed_files.length > 5 ? `${s.changed_files.slice(0, 5).join(', ')} and ${s.changed_files.length - 5} more` : s.changed_files.join(', ');
  const where = s.changed_files.length ? ` in ${escapeControls(files)}` : ', no spec file changed';
  return `planned ${s.planned} of ${plural(s.total, 'object')}: ${escapeControls(s.reason)}${where} (with their dependants and what they depend on); --full plans everything`;
}

/** One attribute as a renderer shows it. `before`/`after` are undefined when the side has no such attribute. */
export interface AttributeLine {
  name: string;
  /** `add` for a create, `remove` for a delete or forget, `change` otherwise. */
  op: 'add' | 'remove' | 'change';
  before?: AttributeValue;
  after?: AttributeValue;
  forcesReplacement: boolean;
  /** The service cannot change it in place: reported, not applied. */
  ignored: boolean;
}

/** The attributes a change shows: all of them for creates and deletes, only the differing ones otherwise (sorted). */
export function attributeLines(change: Change): AttributeLine[] {
  const forcing = new Set(change.requires_replace ?? []);
  const ignored = new Set(change.ignored_changes ?? []);
  const line = (name: string, op: AttributeLine['op']): AttributeLine => {
    const out: AttributeLine = { name, op, forcesReplacement: forcing.has(name), ignored: ignored.has(name) };
    if (change.before && Object.hasOwn(change.before, name)) out.before = change.before[name];
    if (change.after && Object.hasOwn(change.after, name)) out.after = change.after[name];
    return out;
  };
  switch (change.action) {
    case 'create':
      return sortedKeys(change.after).map((n) => line(n, 'add'));
    case 'delete':
    case 'forget':
      return sortedKeys(change.before).map((n) => line(n, 'remove'));
    case 'update':
    case 'import':
    case 'replace':
    case 'noop':
      return [...new Set([...change.changed, ...forcing, ...ignored])].sort(compareStrings).map((n) => line(n, 'change'));
    default:
      return assertNever(change.action);
  }
}

/** A value as it appears in a plan: strings quoted and escaped, so an empty string and an absent value differ. */
export function formatValue(value: AttributeValue | undefined): string {
  if (value === undefined) return '(none)';
  if (Array.isArray(value)) return `[${value.map((v) => formatValue(v)).join(', ')}]`;
  if (typeof value === 'string') return escapeControls(JSON.stringify(value));
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  // Outside the AttributeValue type (a hand-edited plan file): show it rather than fail the whole render.
  return escapeControls(JSON.stringify(value) ?? String(value));
}

/**
 * Makes control characters (C0, DEL, C1) and bidirectional overrides visible as `\n`, `\u001b`, `\u202e`:
 * terminals execute the former, and the latter reorder what a reviewer sees.
 */
export function escapeControls(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** Text symbol per action; a replace shows its order (Terraform's `-/+` and `+/-`). */
export function actionSymbol(change: Change): string {
  switch (change.action) {
    case 'create':
      return '+';
    case 'update':
      return '~';
    case 'replace':
      return change.create_before_destroy ? '+/-' : '-/+';
    case 'delete':
      return '-';
    case 'import':
      return '<=';
    case 'forget':
      return 'x';
    case 'noop':
      return '=';
    default:
      return assertNever(change.action);
  }
}

const LEGEND: Array<[string, string]> = [
  ['+', 'create'],
  ['~', 'update in place'],
  ['-/+', 'replace: delete, then create'],
  ['+/-', 'replace: create, then delete'],
  ['-', 'delete'],
  ['<=', 'import: adopt an existing object'],
  ['x', 'forget: already gone, removed from state only'],
  ['=', 'no change: differences that cannot be applied'],
];

/** The plan as text for a terminal; ends with a newline, and its last line is the summary. */
export function renderPlanText(plan: Plan, style: Style): string {
  const out: string[] = [];
  const deletes = describeDeletes(plan);
  if (deletes) out.push(style.red(style.bold(`! ${deletes}`)), '');

  out.push(`tidemark plan for ${style.bold(escapeControls(plan.environment))}`);
  out.push(`Against: ${plan.target.mode === 'sandbox' ? style.yellow(escapeControls(plan.target.label)) : escapeControls(plan.target.label)}`);
  out.push(`Specs: ${formatSpecsRevision(plan.specs)}`);
  const scope = describeScope(plan);
  if (scope) out.push(`Scope: ${scope}`);
  else if (plan.options.targets.length > 0) {
    out.push(`Targets: ${plan.options.targets.map(escapeControls).join(', ')} (and what they depend on; everything else is left out)`);
  }
  out.push('');

  const listed = plan.changes.filter(isListed);
  if (listed.length > 0) {
    const used = new Set(listed.map(actionSymbol));
    out.push(style.dim('Symbols:'));
    for (const [symbol, meaning] of LEGEND) {
      if (used.has(symbol)) out.push(style.dim(`  ${symbol.padStart(3)} ${meaning}`));
    }
    out.push('');
    for (const change of listed) out.push(...changeBlock(change, style), '');
  }

  if (plan.diagnostics.length > 0) {
    out.push(style.bold('Diagnostics:'));
    for (const d of [...plan.diagnostics].sort(compareDiagnostics)) {
      const where = d.source ? formatLocation(d.source) : (d.address ?? '');
      const severity = d.severity === 'error' ? style.red('error') : style.yellow('warning');
      out.push(`  ${where ? `${escapeControls(where)}: ` : ''}${severity} ${escapeControls(d.code)} ${escapeControls(d.summary)}`);
      if (d.detail) out.push(style.dim(`      ${escapeControls(d.detail)}`));
    }
    out.push('');
  }

  out.push(...dataImpactLines(plan.data_impact, style), '');

  const summary = formatPlanSummary(plan);
  out.push(style.bold(summary.startsWith('No changes.') ? style.green(summary) : summary));
  return `${out.join('\n')}\n`;
}

function changeBlock(change: Change, style: Style): string[] {
  const symbol = actionSymbol(change);
  const remote = change.remote_id !== undefined ? ` (id ${escapeControls(change.remote_id)})` : '';
  const lines = [`  ${colourFor(change, style)(symbol.padStart(3))} ${style.bold(escapeControls(change.address))}${remote}`];
  const indent = ' '.repeat(6);
  lines.push(style.dim(`${indent}# ${escapeControls(change.reason)}`));
  if (change.moved_from !== undefined) lines.push(style.dim(`${indent}# renamed from ${escapeControls(change.moved_from)}`));
  if (change.blocked) {
    lines.push(style.red(style.bold(`${indent}! blocked, will not be applied: ${escapeControls(change.blocked.code)} ${escapeControls(change.blocked.message)}`)));
  }
  for (const a of attributeLines(change)) {
    let text: string;
    if (a.op === 'add') text = style.green(`+ ${escapeControls(a.name)}: ${formatValue(a.after)}`);
    else if (a.op === 'remove') text = style.red(`- ${escapeControls(a.name)}: ${formatValue(a.before)}`);
    else text = `${style.yellow('~')} ${escapeControls(a.name)}: ${formatValue(a.before)} -> ${formatValue(a.after)}`;
    if (a.forcesReplacement) text += ` ${style.red('(forces replacement)')}`;
    if (a.ignored) text += ` ${style.yellow('(cannot be changed in place; not applied)')}`;
    lines.push(`${indent}${text}`);
  }
  return lines;
}

function colourFor(change: Change, style: Style): (s: string) => string {
  switch (change.action) {
    case 'create':
    case 'import':
      return style.green;
    case 'update':
      return style.yellow;
    case 'replace':
    case 'delete':
      return style.red;
    case 'forget':
    case 'noop':
      return style.dim;
    default:
      return assertNever(change.action);
  }
}

function dataImpactLines(impact: DataImpact, style: Style): string[] {
  if (impact.status === 'not_computed') {
    return [`${style.bold('Data impact:')} not computed${impact.note ? ` (${escapeControls(impact.note)})` : ''}.`];
  }
  const surveys = impact.surveys ?? [];
  if (impact.sources.length === 0 && impact.audiences.length === 0 && surveys.length === 0) {
    return [`${style.bold('Data impact:')} no source rows or audience members change.`];
  }
  const lines = [style.bold('Data impact:')];
  if (impact.sources.length > 0) {
    lines.push(
      ...table(
        ['Source', 'New', 'Changed', 'Unchanged', 'Rejected', 'Blocked nulls'],
        impact.sources.map((s) => [escapeControls(s.name), s.new, s.changed, s.unchanged, s.rejected, s.null_blocked].map(String)),
      ),
    );
  }
  if (impact.audiences.length > 0) {
    if (impact.sources.length > 0) lines.push('');
    lines.push(...table(['Audience', 'Joining', 'Leaving'], impact.audiences.map((a) => [escapeControls(a.name), String(a.joining), String(a.leaving)])));
    for (const a of impact.audiences) if (a.held) lines.push(`  ${escapeControls(a.name)} is not published this run: ${escapeControls(a.held)}`);
  }
  if (surveys.length > 0) {
    if (impact.sources.length > 0 || impact.audiences.length > 0) lines.push('');
    lines.push(
      ...table(
        ['Survey target', 'Would invite', 'Held out', 'In window', 'Already invited', 'Capped', 'Opted out', 'Bounced', 'No email', 'Claimed', 'Waiting'],
        surveys.map((t) => [escapeControls(t.name), ...[t.would_invite, t.held_out, t.in_window, t.already_invited, t.capped, t.opted_out, t.bounced ?? 0, t.no_email, t.claimed_by_other, t.waiting].map(String)]),
      ),
    );
  }
  return lines;
}

/** A plain table: first column left-aligned (names), the others right-aligned (counts). */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')}`.trimEnd();
  return [format(head), ...rows.map(format)];
}

function sortedKeys(attrs: Record<string, unknown> | null): string[] {
  return attrs ? Object.keys(attrs).sort(compareStrings) : [];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
