/**
 * Changed-spec scope: on a pull request the plan covers the objects whose spec documents changed since
 * the merge base, their dependants, and (through `--target`'s selection) what they depend on. Pure: the
 * spec texts at the base and now, the desired objects and the state come in as values; git is read in
 * composition/changed-specs.ts.
 *
 * The scope may plan more than the pull request touched, never less. An object is in it when:
 * - its document was added, changed or moved (documents are matched by `kind` and `name`, so an edit
 *   elsewhere in the same file leaves it out, and a comment-only edit is a change of nothing);
 * - what the specs ask of it changed, whichever document said so (the Workspace's directory or webhook
 *   URL changes every list or subscription it feeds), compared on the desired objects at both commits;
 * - its spec is gone (a state entry no desired object claims): a delete is a change;
 * - it depends on one of the above (a dependant must be planned with what it depends on).
 * When a document cannot be matched (a YAML error, no `kind`/`name`) every object its file declares is in.
 */
import { canonicalJson } from '../core/digest.ts';
import { formatAddress } from '../core/address.ts';
import { parseYamlFile, type ParsedDocument } from '../spec/parse.ts';
import type { DesiredResource } from './desired.ts';
import type { StateEntry } from './diff.ts';
import type { PlanScope } from './plan.ts';

/** A spec file that differs between the merge base and the working tree (commits and uncommitted edits). */
export interface ChangedSpecFile {
  /** As specs are shown (relative to the working directory, `/` separators). */
  path: string;
  /** Its text at the merge base; null when it was added since. */
  base: string | null;
  /** Its text now; null when it was deleted since. */
  current: string | null;
}

export interface ScopeInput {
  /** The ref compared against, as given (`origin/main`), and the merge base commit. */
  base: { ref: string; commit: string };
  files: ChangedSpecFile[];
  /** The desired objects now. */
  desired: DesiredResource[];
  /** The desired objects at the merge base; undefined when the specs there do not validate. */
  baseDesired: DesiredResource[] | undefined;
  state: StateEntry[];
}

export interface Scope {
  /** Addresses to plan (sorted); dependencies are added by the planner's target selection. */
  targets: string[];
  /** Per selected address, why (for people; the first reason found). */
  reasons: Record<string, string>;
  /** What the plan says about its scope (`planned` is filled once the plan is made). */
  summary: Omit<PlanScope, 'planned'>;
}

interface DocumentAt {
  key: string | null;
  data: unknown;
  startLine: number;
  endLine: number;
}

function documentsOf(file: string, text: string | null): { docs: DocumentAt[]; unreadable: boolean } {
  if (text === null) return { docs: [], unreadable: false };
  const parsed = parseYamlFile(file, text);
  let unreadable = parsed.diagnostics.some((d) => d.severity === 'error');
  const docs = parsed.documents
    .filter((pd) => pd.data !== null && pd.data !== undefined)
    .map((pd) => {
      const key = keyOf(pd);
      if (key === null) unreadable = true;
      return { key, data: pd.data, startLine: pd.lineCounter.linePos(pd.doc.range[0]).line, endLine: pd.lineCounter.linePos(pd.doc.range[2]).line };
    });
  return { docs, unreadable };
}

function keyOf(pd: ParsedDocument): string | null {
  const d = pd.data as { kind?: unknown; name?: unknown } | null;
  return d && typeof d.kind === 'string' && typeof d.name === 'string' ? `${d.kind}.${d.name}` : null;
}

function desiredDigest(d: DesiredResource): string {
  return canonicalJson({
    attributes: d.attributes,
    dependsOn: d.dependsOn.map(formatAddress).sort(),
    preventDestroy: d.preventDestroy,
    movedFrom: d.movedFrom ? formatAddress(d.movedFrom) : null,
  });
}

export function selectChangedScope(input: ScopeInput): Scope {
  const reasons: Record<string, string> = {};
  const add = (address: string, why: string) => {
    if (!(address in reasons)) reasons[address] = why;
  };
  const known = new Set([...input.desired.map((d) => formatAddress(d.address)), ...input.state.map((s) => s.address)]);

  // Documents as they were, by key, from the changed files (an unchanged file holds the same documents now).
  const before = new Map<string, { file: string; data: string }>();
  const now = new Map<string, { file: string; doc: DocumentAt }[]>();
  const wholeFiles = new Set<string>();
  for (const f of input.files) {
    const base = documentsOf(f.path, f.base);
    const current = documentsOf(f.path, f.current);
    if (base.unreadable || current.unreadable) wholeFiles.add(f.path);
    for (const d of base.docs) if (d.key) before.set(d.key, { file: f.path, data: canonicalJson(d.data) });
    for (const d of current.docs) if (d.key) now.set(d.key, [...(now.get(d.key) ?? []), { file: f.path, doc: d }]);
  }
  const changedDocs: Array<{ file: string; doc: DocumentAt; key: string }> = [];
  for (const [key, list] of now) {
    for (const at of list) {
      const was = before.get(key);
      if (!was || was.file !== at.file || was.data !== canonicalJson(at.doc.data)) changedDocs.push({ ...at, key });
    }
  }
  const changedKeys = new Set(changedDocs.map((d) => d.key));
  const removedKeys = [...before.keys()].filter((k) => !now.has(k));

  for (const d of input.desired) {
    const address = formatAddress(d.address);
    const file = d.source.file;
    const line = d.source.start.line;
    if (wholeFiles.has(file)) {
      add(address, `${file} changed`);
      continue;
    }
    const doc = changedDocs.find((c) => c.file === file && line >= c.doc.startLine && line <= c.doc.endLine);
    if (doc) add(address, `${doc.key.replace('.', ' ')} changed (${file})`);
  }

  // What the specs ask of each object, at both commits: catches what a shared document (the Workspace) changed.
  if (input.baseDesired) {
    const was = new Map(input.baseDesired.map((d) => [formatAddress(d.address), desiredDigest(d)]));
    for (const d of input.desired) {
      const address = formatAddress(d.address);
      const before = was.get(address);
      if (before === undefined) add(address, 'declared since the base');
      else if (before !== desiredDigest(d)) add(address, 'what the specs ask of it changed');
    }
  } else {
    // Nothing to compare with: a changed Workspace may have changed any object.
    const workspace = changedDocs.find((c) => c.key.startsWith('Workspace.')) ?? removedKeys.find((k) => k.startsWith('Workspace.'));
    if (workspace || wholeFiles.size > 0) for (const d of input.desired) add(formatAddress(d.address), 'the specs at the base do not validate, and the Workspace or an unreadable file changed');
  }

  const desiredAddresses = new Set(input.desired.map((d) => formatAddress(d.address)));
  const movedFrom = new Set(input.desired.flatMap((d) => (d.movedFrom ? [formatAddress(d.movedFrom)] : [])));
  for (const s of input.state) {
    if (!desiredAddresses.has(s.address) && !movedFrom.has(s.address)) add(s.address, 'its spec was removed');
  }

  // Dependants, transitively: an object that depends on a planned one is planned with it.
  const dependants = new Map<string, Set<string>>();
  const edge = (from: string, on: string) => dependants.set(on, (dependants.get(on) ?? new Set()).add(from));
  for (const d of input.desired) for (const on of d.dependsOn) edge(formatAddress(d.address), formatAddress(on));
  for (const s of input.state) for (const on of s.dependsOn) edge(s.address, on);
  const queue = Object.keys(reasons);
  while (queue.length) {
    const a = queue.shift()!;
    for (const dep of dependants.get(a) ?? []) {
      if (dep in reasons) continue;
      add(dep, `depends on ${a}`);
      queue.push(dep);
    }
  }

  const targets = Object.keys(reasons).filter((a) => known.has(a)).sort();
  return {
    targets,
    reasons: Object.fromEntries(targets.map((a) => [a, reasons[a]!])),
    summary: {
      mode: 'changed',
      reason: `changed since ${input.base.ref} (merge base ${input.base.commit.slice(0, 12)})`,
      base: { ref: input.base.ref, commit: input.base.commit },
      changed_files: input.files.map((f) => f.path).sort(),
      changed_documents: [...new Set([...changedKeys, ...removedKeys])].sort(),
      total: known.size,
    },
  };
}

/** The scope of a plan of everything, and why (`--full`, no pull request, or why git could not answer). */
export function fullScope(reason: string, total: number): Omit<PlanScope, 'planned'> {
  return { mode: 'full', reason, changed_files: [], changed_documents: [], total };
}
