/**
 * The whole validation pipeline over spec texts: parse → schema → resolve references → policy rules →
 * workspace policy (severity overrides, per-spec suppressions). Pure: the caller supplies file contents.
 * Every problem is reported at once; nothing throws for a user's mistake.
 */
import { compareDiagnostics, hasErrors, summarizeByCode, type Diagnostic } from '../core/diagnostics.ts';
import { addressFor, type Located, type SpecModel } from './model.ts';
import { locate, parseYamlFile, type ParsedDocument } from './parse.ts';
import { valueAt } from './schema-issues.ts';
import { at, buildModel, type AnyLocated } from './resolve.ts';
import { RULES, type Rule } from './rules/index.ts';
import { KIND_SCHEMAS, KINDS, type Kind } from './schema/index.ts';
import { issuesToDiagnostics } from './schema-issues.ts';
import { didYouMean } from './suggest.ts';

export interface SpecFile {
  /** Path as shown to the user (relative, forward slashes). */
  path: string;
  text: string;
}

export interface SuppressedFinding {
  diagnostic: Diagnostic;
  reason: string;
}

export interface ValidationResult {
  /** Present only when there are no errors. */
  model?: SpecModel;
  diagnostics: Diagnostic[];
  suppressed: SuppressedFinding[];
  /** How many specs of each kind were read (valid or not). */
  counts: Record<Kind, number>;
  files: number;
}

export interface ValidateOptions {
  rules?: Rule[];
  /** Problems found before parsing (files that could not be read): they make the set invalid too. */
  diagnostics?: Diagnostic[];
  /** Diagnostics shown per code before the rest are summarised with a count (default 50). */
  limitPerCode?: number;
}

export function validateSpecs(files: SpecFile[], opts: ValidateOptions = {}): ValidationResult {
  const diagnostics: Diagnostic[] = [...(opts.diagnostics ?? [])];
  const located: AnyLocated[] = [];
  const documents: ParsedDocument[] = [];
  const invalid = { addresses: new Set<string>(), systems: new Set<string>() };
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;

  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const parsed = parseYamlFile(file.path, file.text);
    diagnostics.push(...parsed.diagnostics);
    for (const pd of parsed.documents) {
      documents.push(pd);
      const result = validateDocument(pd);
      diagnostics.push(...result.diagnostics);
      if (result.specKind) counts[result.specKind]++;
      if (result.spec) located.push(result.spec);
      if (result.specKind && (!result.spec || result.diagnostics.length > 0)) {
        const raw = pd.data as Record<string, unknown>;
        if (typeof raw.name === 'string') invalid.addresses.add(addressFor(result.specKind, raw.name));
        if (result.specKind === 'Source' && typeof raw.system === 'string') invalid.systems.add(raw.system);
      }
    }
  }

  const { model, diagnostics: refDiagnostics } = buildModel(located, documents, invalid);
  diagnostics.push(...refDiagnostics);

  for (const rule of opts.rules ?? RULES) {
    for (const f of rule.check(model)) {
      diagnostics.push({
        severity: rule.severity,
        code: rule.code,
        summary: f.summary,
        detail: f.detail ? `${f.detail} Why: ${rule.harm}` : `Why: ${rule.harm}`,
        ...at(f.spec, f.path, f.key),
        ...(f.source ? { source: f.source } : {}),
      });
    }
  }

  const { kept, suppressed } = applyPolicy(model, dedupe(diagnostics));
  kept.sort(compareDiagnostics);
  return {
    model: hasErrors(kept) ? undefined : model,
    diagnostics: summarizeByCode(kept, opts.limitPerCode ?? 50),
    suppressed,
    counts,
    files: files.length,
  };
}

function validateDocument(pd: ParsedDocument): { specKind?: Kind; spec?: AnyLocated; diagnostics: Diagnostic[] } {
  const data = pd.data;
  if (data === null || data === undefined) return { diagnostics: [] }; // an empty document, e.g. a trailing `---`
  const where = (path: (string | number)[], key = false) => ({ source: locate(pd, path, { key }), path });
  if (typeof data !== 'object' || Array.isArray(data)) {
    return {
      diagnostics: [{ severity: 'error', code: 'SPEC002', summary: `A spec document must be a mapping starting with \`kind:\` (one of ${KINDS.join(', ')}).`, ...where([]) }],
    };
  }
  const specKind = (data as Record<string, unknown>).kind;
  if (specKind === undefined) {
    return {
      diagnostics: [{ severity: 'error', code: 'SPEC002', summary: `Missing \`kind:\`: say which kind of spec this is (${KINDS.join(', ')}).`, ...where([]) }],
    };
  }
  if (typeof specKind !== 'string' || !(KINDS as string[]).includes(specKind)) {
    return {
      diagnostics: [{
        severity: 'error',
        code: 'SPEC002',
        summary: `Unknown kind "${String(specKind)}": expected one of ${KINDS.join(', ')}.${typeof specKind === 'string' ? didYouMean(specKind, KINDS) : ''}`,
        ...where(['kind']),
      }],
    };
  }
  const k = specKind as Kind;
  const schema = KIND_SCHEMAS[k];
  const rawName = (data as Record<string, unknown>).name;
  const address = addressFor(k, typeof rawName === 'string' ? rawName : '?');
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    const diagnostics = issuesToDiagnostics(parsed.error.issues, pd, schema, address);
    // Unknown keys alone do not stop the rest of the spec from being checked: drop them and go on, so
    // the user sees every other problem now rather than after fixing the typo.
    if (parsed.error.issues.every((i) => i.code === 'unrecognized_keys')) {
      const retry = schema.safeParse(withoutKeys(data, parsed.error.issues as Array<{ path: PropertyKey[]; keys: string[] }>));
      if (retry.success) {
        const spec = retry.data as { name: string };
        return { specKind: k, spec: { kind: k, name: spec.name, address, spec, pd } as unknown as AnyLocated, diagnostics };
      }
    }
    return { specKind: k, diagnostics };
  }
  const spec = parsed.data as { name: string };
  const loc = { kind: k, name: spec.name, address, spec, pd } as unknown as AnyLocated;
  return { specKind: k, spec: loc, diagnostics: [] };
}

function withoutKeys(data: unknown, issues: Array<{ path: PropertyKey[]; keys: string[] }>): unknown {
  const copy = structuredClone(data);
  for (const i of issues) {
    const target = valueAt(copy, i.path as (string | number)[]);
    if (target && typeof target === 'object') for (const key of i.keys) delete (target as Record<string, unknown>)[key];
  }
  return copy;
}

function dedupe(list: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return list.filter((d) => {
    const key = `${d.code}|${d.source?.file}|${d.source?.start.line}|${d.source?.start.col}|${d.summary}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const RULE_CODES = new Set(RULES.map((r) => r.code));
/** Rules no policy or suppression may weaken: a leaked secret is leaked whatever the workspace prefers. */
const LOCKED_CODES = new Set(RULES.filter((r) => r.locked).map((r) => r.code));

function applyPolicy(model: SpecModel, diagnostics: Diagnostic[]): { kept: Diagnostic[]; suppressed: SuppressedFinding[] } {
  const overrides = model.workspace?.spec.policy ?? {};
  const bySpec = new Map<string, Located<{ suppress?: Record<string, string> }>>();
  for (const s of [...model.sources.values(), ...model.segments.values(), ...model.surveyTargets.values()]) bySpec.set(s.address, s);
  if (model.workspace) bySpec.set(model.workspace.address, model.workspace);

  const kept: Diagnostic[] = [...lockedRuleOverrides(model)];
  const suppressed: SuppressedFinding[] = [];
  for (const d of diagnostics) {
    // Structural problems (SPEC, REF) cannot be switched off: the model would be wrong.
    if (!RULE_CODES.has(d.code)) {
      kept.push(d);
      continue;
    }
    if (LOCKED_CODES.has(d.code)) {
      kept.push(d);
      continue;
    }
    const suppress = d.address ? bySpec.get(d.address)?.spec.suppress : undefined;
    const reason = suppress && Object.hasOwn(suppress, d.code) ? suppress[d.code] : undefined;
    if (reason) {
      suppressed.push({ diagnostic: d, reason });
      continue;
    }
    const o = Object.hasOwn(overrides, d.code) ? overrides[d.code] : undefined;
    if (o === 'off') continue;
    kept.push(o ? { ...d, severity: o } : d);
  }
  return { kept, suppressed };
}

/** A `policy:` or `suppress:` entry that tries to weaken a locked rule is itself an error, where it is written. */
function lockedRuleOverrides(model: SpecModel): Diagnostic[] {
  const out: Diagnostic[] = [];
  const ws = model.workspace;
  for (const code of LOCKED_CODES) {
    const o = ws?.spec.policy && Object.hasOwn(ws.spec.policy, code) ? ws.spec.policy[code] : undefined;
    if (ws && o !== undefined && o !== 'error') {
      out.push({
        severity: 'error',
        code: 'SPEC003',
        summary: `policy: ${code} cannot be set to ${o}: it is always an error.`,
        detail: 'A secret in a spec is leaked to everyone who can read the repository; remove the secret instead.',
        ...at(ws, ['policy', code], true),
      });
    }
    const specs: Array<Located<{ suppress?: Record<string, string> }>> = [
      ...(ws ? [ws] : []),
      ...model.sources.values(),
      ...model.segments.values(),
      ...model.surveyTargets.values(),
    ];
    for (const s of specs) {
      if (s.spec.suppress && Object.hasOwn(s.spec.suppress, code)) {
        out.push({
          severity: 'error',
          code: 'SPEC003',
          summary: `suppress: ${code} cannot be accepted on a spec: it is always an error.`,
          detail: 'A secret in a spec is leaked to everyone who can read the repository; remove the secret instead.',
          ...at(s, ['suppress', code], true),
        });
      }
    }
  }
  return out;
}
