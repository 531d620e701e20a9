/**
 * Validated documents → one model, with every cross-file reference checked: fields, events, sources,
 * segments, environments. Pure.
 */
import type { Diagnostic, Path } from '../core/diagnostics.ts';
import { locate, type ParsedDocument } from './parse.ts';
import { knownSystems, sorted, type Located, type SpecModel } from './model.ts';
import type { Condition, FieldsSpec, Kind, SegmentSpec, SourceSpec, SpecOfKind, SurveyTargetSpec, WorkspaceSpec } from './schema/index.ts';
import { didYouMean } from './suggest.ts';

/** A located spec of any spec kind (the union follows the kind table in schema/index.ts). */
export type AnyLocated = { [K in Kind]: Located<SpecOfKind[K]> }[Kind];

export function at(spec: Located<unknown>, path: Path, key = false): Pick<Diagnostic, 'address' | 'path' | 'source'> {
  return { address: spec.address, path, source: locate(spec.pd, path, { key }) };
}

export function buildModel(
  specs: AnyLocated[],
  documents: ParsedDocument[] = [],
  invalid: SpecModel['invalid'] = { addresses: new Set(), systems: new Set() },
): { model: SpecModel; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const model: SpecModel = {
    fields: new Map(),
    events: new Map(),
    sources: new Map(),
    segments: new Map(),
    surveyTargets: new Map(),
    documents,
    invalid,
  };
  const seen = new Map<string, AnyLocated>();
  const workspaces: Located<WorkspaceSpec>[] = [];

  // One handler per spec kind: the mapped type makes a spec kind added to the table without one a type error,
  // instead of a spec that silently never reaches the model.
  const addToModel: { [K in Kind]: (s: Located<SpecOfKind[K]>) => void } = {
    Workspace: (s) => {
      workspaces.push(s);
    },
    Fields: (f) => {
      // Names are unique across the registry's files: a second registration is reported where it stands.
      const register = <D>(registry: Map<string, { at: Located<FieldsSpec>; path: Path }>, key: 'fields' | 'events', label: string, entries: Record<string, D>, add: (name: string, def: D) => void) => {
        for (const [name, def] of Object.entries(entries)) {
          const prior = registry.get(name);
          if (prior) {
            diagnostics.push({
              severity: 'error',
              code: 'SPEC006',
              summary: `${label} "${name}" is registered twice: also at ${prior.at.pd.file}:${locate(prior.at.pd, prior.path).start.line}.`,
              ...at(f, [key, name], true),
            });
            continue;
          }
          add(name, def);
        }
      };
      register(model.fields, 'fields', 'Field', f.spec.fields ?? {}, (name, def) => model.fields.set(name, { name, def, at: f, path: ['fields', name] }));
      register(model.events, 'events', 'Event', f.spec.events ?? {}, (name, def) => model.events.set(name, { name, def, at: f, path: ['events', name] }));
    },
    Source: (s) => {
      model.sources.set(s.name, s);
    },
    Segment: (s) => {
      model.segments.set(s.name, s);
    },
    SurveyTarget: (s) => {
      model.surveyTargets.set(s.name, s);
    },
  };
  for (const s of specs) {
    // Fields documents may share a name across files only if they are different documents of the
    // registry; duplicate *field* names are what matters and are checked below.
    if (s.kind !== 'Fields') {
      const prior = seen.get(s.address);
      if (prior) {
        diagnostics.push({
          severity: 'error',
          code: 'SPEC006',
          summary: `Duplicate ${s.kind} "${s.name}": also defined at ${prior.pd.file}:${locate(prior.pd, ['name']).start.line}.`,
          ...at(s, ['name']),
        });
        continue;
      }
      seen.set(s.address, s);
    }
    addToModel[s.kind](s as never);
  }

  if (workspaces.length === 1) model.workspace = workspaces[0];
  else if (workspaces.length > 1) {
    for (const w of workspaces.slice(1)) {
      diagnostics.push({
        severity: 'error',
        code: 'ID001',
        summary: `More than one Workspace ("${workspaces[0]!.name}" and "${w.name}"): there must be exactly one, with one primary identifier.`,
        ...at(w, ['kind']),
      });
    }
    model.workspace = workspaces[0];
  }

  diagnostics.push(...checkReferences(model));
  return { model, diagnostics };
}

function checkReferences(model: SpecModel): Diagnostic[] {
  const out: Diagnostic[] = [];
  const fieldNames = [...model.fields.keys()];
  const eventNames = [...model.events.keys()];
  const segmentNames = [...model.segments.keys()];
  const sourceNames = [...model.sources.keys()];
  const envNames = Object.keys(model.workspace?.spec.environments ?? {});

  const field = (spec: Located<unknown>, path: Path, name: string, role: string) => {
    if (!model.fields.has(name)) {
      out.push({
        severity: 'error',
        code: 'REF001',
        summary: `${role} "${name}" is not in the field registry.${didYouMean(name, fieldNames)}`,
        detail: 'Every attribute a spec writes or reads must be registered in a Fields spec with its type and owner, so ownership and types can be checked.',
        ...at(spec, path),
      });
    }
  };
  const event = (spec: Located<unknown>, path: Path, name: string, role: string) => {
    if (!model.events.has(name)) {
      out.push({
        severity: 'error',
        code: 'REF002',
        summary: `${role} "${name}" is not in the event registry.${didYouMean(name, eventNames)}`,
        detail: 'Register events under `events:` in a Fields spec with the system that sends them.',
        ...at(spec, path),
      });
    }
  };
  const segment = (spec: Located<unknown>, path: Path, name: string, role: string) => {
    if (!model.segments.has(name) && !model.invalid.addresses.has(`segment.${name}`)) {
      out.push({
        severity: 'error',
        code: 'REF003',
        summary: `${role} "${name}" is not a Segment defined in the specs.${didYouMean(name, segmentNames)}`,
        ...at(spec, path),
      });
    }
  };
  const envs = (spec: Located<{ environments?: string[] }>) => {
    (spec.spec.environments ?? []).forEach((e, i) => {
      if (model.workspace && !envNames.includes(e)) {
        out.push({
          severity: 'error',
          code: 'REF005',
          summary: `Environment "${e}" is not declared in the Workspace.${didYouMean(e, envNames)}`,
          ...at(spec, ['environments', i]),
        });
      }
    });
  };

  const ws = model.workspace;
  if (ws) {
    if (ws.spec.default_environment && !envNames.includes(ws.spec.default_environment)) {
      out.push({
        severity: 'error',
        code: 'REF005',
        summary: `default_environment "${ws.spec.default_environment}" is not one of the environments.${didYouMean(ws.spec.default_environment, envNames)}`,
        ...at(ws, ['default_environment']),
      });
    }
    if (ws.spec.identity.immutable_id) field(ws, ['identity', 'immutable_id'], ws.spec.identity.immutable_id, 'Immutable id field');
  }

  const systems = knownSystems(model);
  for (const f of sorted(model.fields)) {
    if (f.def.updated_at) field(f.at, [...f.path, 'updated_at'], f.def.updated_at, 'updated_at companion');
    (f.def.writers ?? []).forEach((w, i) => {
      if (!systems.has(w)) {
        out.push({
          severity: 'error',
          code: 'OWN004',
          summary: `Writer system "${w}" of field "${f.name}" is unknown.${didYouMean(w, systems)}`,
          detail: 'Systems are the `system:` of a Source or listed under `systems:` in the Workspace.',
          ...at(f.at, [...f.path, 'writers', i]),
        });
      }
    });
  }
  for (const e of sorted(model.events)) {
    if (!systems.has(e.def.owner)) {
      out.push({
        severity: 'error',
        code: 'OWN004',
        summary: `Owner "${e.def.owner}" of event "${e.name}" is not a known system.${didYouMean(e.def.owner, systems)}`,
        detail: 'Systems are the `system:` of a Source or listed under `systems:` in the Workspace.',
        ...at(e.at, [...e.path, 'owner']),
      });
    }
  }

  for (const s of sorted(model.sources)) {
    envs(s);
    for (const name of Object.keys(s.spec.fields)) field(s, ['fields', name], name, 'Mapped field');
    if (s.spec.stamp_last_sent) field(s, ['stamp_last_sent'], s.spec.stamp_last_sent, 'Last-sent field');
    if (s.spec.event) event(s, ['event', 'name'], s.spec.event.name, 'Event');
  }

  for (const seg of sorted(model.segments)) {
    envs(seg);
    if (seg.spec.conditions) walkConditions(seg.spec.conditions, ['conditions'], (c, path) => {
      if (c.attribute) field(seg, [...path, 'attribute', 'field'], c.attribute.field, 'Field');
      if (c.event) event(seg, [...path, 'event', 'name'], c.event.name, 'Event');
      if (c.segment !== undefined) segment(seg, [...path, 'segment'], c.segment, 'Segment');
    });
    if (seg.spec.publish?.attribute) field(seg, ['publish', 'attribute'], seg.spec.publish.attribute, 'Membership attribute');
    (seg.spec.freshness_guard?.sources ?? []).forEach((n, i) => {
      if (!model.sources.has(n) && !model.invalid.addresses.has(`source.${n}`)) {
        out.push({
          severity: 'error',
          code: 'REF004',
          summary: `Source "${n}" is not defined.${didYouMean(n, sourceNames)}`,
          ...at(seg, ['freshness_guard', 'sources', i]),
        });
      }
    });
    if (!seg.spec.conditions && !seg.spec.customerio_segment) {
      out.push({
        severity: 'error',
        code: 'SPEC005',
        summary: 'A Segment needs either `conditions` or `customerio_segment` (a reference to an existing segment).',
        ...at(seg, ['name']),
      });
    } else if (seg.spec.conditions && seg.spec.customerio_segment) {
      out.push({
        severity: 'error',
        code: 'SPEC003',
        summary: 'A Segment has either `conditions` or `customerio_segment`, not both.',
        ...at(seg, ['customerio_segment']),
      });
    }
  }
  out.push(...segmentCycles(model));

  for (const t of sorted(model.surveyTargets)) {
    envs(t);
    segment(t, ['audience'], t.spec.audience, 'Audience');
    event(t, ['moment', 'event'], t.spec.moment.event, 'Moment event');
    t.spec.payload.forEach((p, i) => field(t, ['payload', i], p, 'Payload field'));
    if (t.spec.responses?.write.attribute) field(t, ['responses', 'write', 'attribute'], t.spec.responses.write.attribute, 'Response attribute');
    if (t.spec.responses?.write.event) event(t, ['responses', 'write', 'event'], t.spec.responses.write.event, 'Response event');
    const scope = t.spec.frequency_cap?.scope;
    if (Array.isArray(scope)) {
      const targetNames = [...model.surveyTargets.keys()];
      scope.forEach((n, i) => {
        if (!model.surveyTargets.has(n) && !model.invalid.addresses.has(`survey_target.${n}`)) {
          out.push({
            severity: 'error',
            code: 'REF007',
            summary: `Survey target "${n}" in the shared frequency cap is not defined.${didYouMean(n, targetNames)}`,
            ...at(t, ['frequency_cap', 'scope', i]),
          });
        }
      });
    }
  }
  return out;
}

export function walkConditions(c: Condition, path: Path, visit: (c: Condition, path: Path) => void): void {
  visit(c, path);
  c.all?.forEach((x, i) => walkConditions(x, [...path, 'all', i], visit));
  c.any?.forEach((x, i) => walkConditions(x, [...path, 'any', i], visit));
  if (c.not) walkConditions(c.not, [...path, 'not'], visit);
}

function segmentCycles(model: SpecModel): Diagnostic[] {
  const out: Diagnostic[] = [];
  const deps = new Map<string, string[]>();
  for (const seg of model.segments.values()) {
    const d: string[] = [];
    if (seg.spec.conditions) walkConditions(seg.spec.conditions, [], (c) => c.segment !== undefined && d.push(c.segment));
    deps.set(seg.name, d);
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const reported = new Set<string>();
  const visit = (name: string, stack: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      const key = [...cycle].sort().join(',');
      if (!reported.has(key)) {
        reported.add(key);
        const seg = model.segments.get(name)!;
        out.push({
          severity: 'error',
          code: 'REF006',
          summary: `Segments refer to each other in a loop: ${cycle.join(' → ')}.`,
          ...at(seg, ['conditions']),
        });
      }
      return;
    }
    state.set(name, 'visiting');
    for (const d of deps.get(name) ?? []) if (model.segments.has(d)) visit(d, [...stack, name]);
    state.set(name, 'done');
  };
  for (const name of [...deps.keys()].sort()) visit(name, []);
  return out;
}
