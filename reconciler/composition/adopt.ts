/**
 * `tidemark drift --adopt`: the spec files rewritten so they ask for what is live, for the attributes
 * that drifted. All or nothing:
 *
 * - only attributes tidemark manages, each at the one spec key that declares it (kinds/adoption.ts);
 *   one that is derived or shared (a segment's remote name, the Workspace's directory) refuses the whole
 *   adoption, naming it;
 * - each file is edited in place (spec/adopt/set-scalar.ts keeps comments, key order and formatting),
 *   then the specs are validated again and the desired objects derived again: every adopted attribute
 *   must now ask for exactly the live value, and nothing else may change. A value the specs cannot
 *   represent (one the kind would normalise into something else) refuses the adoption;
 * - a spec file that changed on disk since it was read refuses it too;
 * - the files are replaced by rename from temporary files beside them, after every one was written,
 *   and put back if a rename fails, so either every file is adopted or none is.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatAddress } from '../core/address.ts';
import type { AttributeValue } from '../core/attributes.ts';
import { canonicalJson, sha256 } from '../core/digest.ts';
import { formatLocation } from '../core/diagnostics.ts';
import { adoptionSite } from '../kinds/adoption.ts';
import { desiredResources } from '../kinds/index.ts';
import type { DriftReport } from '../plan/drift.ts';
import { setScalar, type ScalarValue } from '../spec/adopt/set-scalar.ts';
import { validateSpecs } from '../spec/validate.ts';
import type { OpenEnvironment } from './use-cases.ts';

export interface AdoptedValue {
  file: string;
  /** The line the value is on in the rewritten file. */
  line: number;
  address: string;
  attribute: string;
  /** What the specs asked for before (normalised as the plan compares it). */
  from: AttributeValue | undefined;
  /** What is live, and what the specs now ask for. */
  to: AttributeValue;
}

export interface NotAdopted {
  address: string;
  reason: string;
}

export type AdoptOutcome =
  | { status: 'adopted'; changes: AdoptedValue[]; notAdopted: NotAdopted[] }
  | { status: 'nothing'; notAdopted: NotAdopted[] }
  | { status: 'refused'; problems: string[]; notAdopted: NotAdopted[] };

interface PendingEdit {
  file: string;
  document: number;
  path: ReadonlyArray<string | number>;
  address: string;
  attribute: string;
  from: AttributeValue | undefined;
  to: ScalarValue;
}

const isScalar = (v: unknown): v is ScalarValue => v === null || ['string', 'number', 'boolean'].includes(typeof v);

export async function adoptDrift(ws: OpenEnvironment, report: DriftReport): Promise<AdoptOutcome> {
  const desiredBy = new Map(ws.desired.map((d) => [formatAddress(d.address), d]));
  const notAdopted: NotAdopted[] = [];
  const problems: string[] = [];
  const edits: PendingEdit[] = [];
  for (const item of report.items) {
    if (item.type === 'unmanaged_match') continue;
    if (item.type === 'deleted') {
      notAdopted.push({ address: item.address, reason: 'deleted outside tidemark: the next apply creates it again (remove its spec to let it go)' });
      continue;
    }
    const d = desiredBy.get(item.address);
    const traits = ws.conn.kinds[item.kind];
    if (!d || !traits) {
      notAdopted.push({ address: item.address, reason: 'no longer declared in the specs: the next apply deletes it (with --allow-delete)' });
      continue;
    }
    const asked = traits.normalize(d.attributes);
    for (const f of item.fields) {
      if (canonicalJson(asked[f.name] ?? null) === canonicalJson(f.live ?? null)) continue;
      const site = adoptionSite(ws.model, ws.conn.environment, item.address, f.name);
      if ('refused' in site) {
        problems.push(`${item.address} ${f.name}: ${site.refused}`);
        continue;
      }
      if (!isScalar(f.live ?? null)) {
        problems.push(`${item.address} ${f.name}: its live value is not a single value the spec key can hold`);
        continue;
      }
      edits.push({ file: site.spec.pd.file, document: site.spec.pd.index, path: site.path, address: item.address, attribute: f.name, from: asked[f.name], to: (f.live ?? null) as ScalarValue });
    }
  }
  if (problems.length) return { status: 'refused', problems, notAdopted };
  if (edits.length === 0) return { status: 'nothing', notAdopted };

  // Every spec file as it is now: each must still be what was read, or the adoption would overwrite an edit.
  const texts = new Map<string, string>();
  for (const [file, digest] of Object.entries(ws.load.digests)) {
    const text = await readFile(path.resolve(ws.cwd, file), 'utf8').catch(() => undefined);
    if (text === undefined || sha256(text) !== digest) problems.push(`${file} changed on disk since tidemark read it: run \`tidemark drift --adopt\` again`);
    else texts.set(file, text);
  }
  if (problems.length) return { status: 'refused', problems, notAdopted };

  const changes: AdoptedValue[] = [];
  const edited = new Map<string, string>();
  const ordered = [...edits].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.document - b.document));
  for (const e of ordered) {
    const r = setScalar(edited.get(e.file) ?? texts.get(e.file)!, { document: e.document, path: e.path, value: e.to });
    if (!r.ok) {
      problems.push(`${e.address} ${e.attribute}: ${e.file} ${r.problem}`);
      continue;
    }
    edited.set(e.file, r.text);
    changes.push({ file: e.file, line: r.line, address: e.address, attribute: e.attribute, from: e.from, to: e.to });
  }
  if (problems.length) return { status: 'refused', problems, notAdopted };

  problems.push(...checkAdopted(ws, texts, edited, changes));
  if (problems.length) return { status: 'refused', problems, notAdopted };

  const written = await replaceFiles([...edited].map(([file, text]) => ({ path: path.resolve(ws.cwd, file), expected: texts.get(file)!, text })));
  if (!written.ok) return { status: 'refused', problems: [written.problem], notAdopted };
  return { status: 'adopted', changes, notAdopted };
}

/** The rewritten specs validate, ask for exactly the live value of each adopted attribute, and for nothing else new. */
function checkAdopted(ws: OpenEnvironment, texts: Map<string, string>, edited: Map<string, string>, changes: AdoptedValue[]): string[] {
  const result = validateSpecs([...texts].map(([file, text]) => ({ path: file, text: edited.get(file) ?? text })));
  if (!result.model) {
    const errors = result.diagnostics.filter((d) => d.severity === 'error').slice(0, 5);
    return [`the specs would not validate with the live values: ${errors.map((d) => `${d.source ? `${formatLocation(d.source)}: ` : ''}${d.code} ${d.summary}`).join('; ')}`];
  }
  const problems: string[] = [];
  const after = new Map(desiredResources(result.model, ws.conn.environment).map((d) => [formatAddress(d.address), d]));
  const before = new Map(ws.desired.map((d) => [formatAddress(d.address), d]));
  const adopted = new Map(changes.map((c) => [`${c.address}|${c.attribute}`, c]));
  for (const address of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(address);
    const a = after.get(address);
    const traits = ws.conn.kinds[`${(a ?? b)!.address.provider}.${(a ?? b)!.address.type}`];
    if (!a || !b || !traits) {
      problems.push(`${address} would ${a ? 'appear' : 'disappear'}: adopting must not add or remove objects`);
      continue;
    }
    const was = traits.normalize(b.attributes);
    const now = traits.normalize(a.attributes);
    for (const name of new Set([...Object.keys(was), ...Object.keys(now)])) {
      const c = adopted.get(`${address}|${name}`);
      const want = c ? c.to : was[name];
      if (canonicalJson(now[name] ?? null) === canonicalJson(want ?? null)) continue;
      problems.push(
        c
          ? `${address} ${name}: the live value cannot be represented in the specs (written at ${c.file}:${c.line}, they would ask for ${JSON.stringify(now[name] ?? null)}, not ${JSON.stringify(c.to)})`
          : `${address} ${name} would change too, which adopting must not do`,
      );
    }
  }
  return problems;
}

/**
 * Replaces each file's text as one step for all of them: temporary files beside the originals (same
 * mode, flushed), a last check that no original changed since it was read, then renames; a rename that
 * fails puts the files already renamed back. A symbolic link to a spec is kept: its target is replaced.
 */
export async function replaceFiles(files: ReadonlyArray<{ path: string; expected: string; text: string }>): Promise<{ ok: true } | { ok: false; problem: string }> {
  const staged: Array<{ real: string; tmp: string; expected: string; shown: string }> = [];
  try {
    for (const f of files) {
      const real = await realpath(f.path);
      const mode = (await stat(real)).mode & 0o777;
      const tmp = path.join(path.dirname(real), `.${path.basename(real)}.tidemark-adopt-${randomBytes(6).toString('hex')}`);
      const handle = await open(tmp, 'wx', mode);
      staged.push({ real, tmp, expected: f.expected, shown: f.path });
      try {
        await handle.writeFile(f.text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    for (const s of staged) {
      if ((await readFile(s.real, 'utf8').catch(() => undefined)) !== s.expected) {
        return { ok: false, problem: `${s.shown} changed on disk since tidemark read it: nothing was written; run \`tidemark drift --adopt\` again` };
      }
    }
    const done: typeof staged = [];
    for (const s of staged) {
      try {
        await rename(s.tmp, s.real);
        done.push(s);
      } catch (err) {
        const back = await restore(done);
        return {
          ok: false,
          problem: `${s.shown} could not be replaced (${(err as NodeJS.ErrnoException).code ?? 'error'}): ${back.length ? `${back.join(', ')} could not be put back as they were: check them` : 'nothing was changed'}`,
        };
      }
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, problem: `the rewritten specs could not be written (${(err as NodeJS.ErrnoException).code ?? 'error'}): nothing was changed` };
  } finally {
    await Promise.all(staged.map((s) => rm(s.tmp, { force: true })));
  }
}

/** Puts renamed files back as they were read; the ones that could not be. */
async function restore(done: ReadonlyArray<{ real: string; expected: string; shown: string }>): Promise<string[]> {
  const failed: string[] = [];
  for (const s of done) {
    const tmp = `${s.real}.tidemark-restore-${randomBytes(6).toString('hex')}`;
    try {
      await writeFile(tmp, s.expected, { flag: 'wx', mode: (await stat(s.real)).mode & 0o777 });
      await rename(tmp, s.real);
    } catch {
      await rm(tmp, { force: true });
      failed.push(s.shown);
    }
  }
  return failed;
}
