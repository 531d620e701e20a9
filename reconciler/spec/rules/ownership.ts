import { knownSystems, sorted } from '../model.ts';
import type { Finding, Rule } from './rule.ts';
import { fieldWrites } from './writers.ts';

export const ownershipRules: Rule[] = [
  {
    code: 'OWN001',
    family: 'ownership',
    severity: 'error',
    title: 'A field written by more than one system',
    harm: 'When multiple systems write the same field they overwrite each other and you chase ghosts in debugging.',
    check(model) {
      const out: Finding[] = [];
      for (const [field, writes] of [...fieldWrites(model)].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const def = model.fields.get(field)?.def;
        if (!def) continue;
        const systems = [...new Set(writes.map((w) => w.system))];
        if (def.combine) continue;
        if (systems.length > 1) {
          // The intruders are the writers that are not the owner; if the owner writes nothing, all are.
          const intruders = writes.some((w) => w.system === def.owner) ? writes.filter((w) => w.system !== def.owner) : writes;
          for (const w of intruders) {
            out.push({
              spec: w.spec,
              path: w.path,
              key: w.path[0] === 'fields',
              summary: `Field "${field}" is written by ${systems.join(' and ')}; only its owner (${def.owner}) should write it.`,
              detail: 'Give each system its own field, or list the writers on the field with a `combine` rule (latest_timestamp, max, min, first_non_null).',
            });
          }
          continue;
        }
        // Two sources of the same system writing one field is the same conflict in disguise: whichever
        // runs last wins. Both places are reported.
        const sourcesWriting = writes.filter((w) => w.spec.kind === 'Source' && w.path[0] === 'fields');
        if (sourcesWriting.length > 1) {
          for (const w of sourcesWriting) {
            out.push({
              spec: w.spec,
              path: w.path,
              key: true,
              summary: `Field "${field}" is written by two sources (${sourcesWriting.map((s) => s.spec.name).join(', ')}).`,
              detail: 'Write it from one source, or declare `combine` on the field.',
            });
          }
        }
      }
      return out;
    },
  },
  {
    code: 'OWN002',
    family: 'ownership',
    severity: 'error',
    title: 'Only the owner (or a declared writer) writes a field',
    harm: 'A field written by a system other than its documented owner breaks the "source of truth" note that auditability depends on.',
    check(model) {
      const out: Finding[] = [];
      for (const [field, writes] of [...fieldWrites(model)].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const def = model.fields.get(field)?.def;
        if (!def) continue;
        for (const w of writes) {
          if (w.system !== def.owner && !(def.writers ?? []).includes(w.system)) {
            out.push({
              spec: w.spec,
              path: w.path,
              key: w.path[0] === 'fields',
              summary: `${w.spec.kind} "${w.spec.name}" writes "${field}" as ${w.system}, but the field's owner is ${def.owner}.`,
              detail: `Change the field's owner to ${w.system}, or add ${w.system} to its writers with a combine rule.`,
            });
          }
        }
      }
      return out;
    },
  },
  {
    code: 'OWN003',
    family: 'ownership',
    severity: 'warning',
    title: 'State field without its updated_at companion',
    harm: 'Sync "state + state_updated_at": without the timestamp, journeys cannot tell a fresh status from a stale one.',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        if (s.spec.records !== 'person') continue;
        for (const f of Object.keys(s.spec.fields).sort()) {
          const def = model.fields.get(f)?.def;
          if (!def || def.type === 'timestamp') continue;
          const isState = def.nature === 'state' || (def.nature === undefined && (def.type === 'enum' || def.type === 'boolean'));
          if (!isState) continue;
          if (!def.updated_at) {
            out.push({
              spec: s,
              path: ['fields', f],
              key: true,
              summary: `State field "${f}" has no updated_at companion.`,
              detail: `Register "${f}_updated_at" (timestamp), set updated_at: ${f}_updated_at on the field, and map it in this source.`,
            });
          } else if (!(def.updated_at in s.spec.fields)) {
            out.push({
              spec: s,
              path: ['fields', f],
              key: true,
              summary: `State field "${f}" declares updated_at "${def.updated_at}" but this source does not write it.`,
            });
          }
        }
      }
      return out;
    },
  },
  {
    code: 'OWN004',
    family: 'ownership',
    severity: 'error',
    title: 'The owner of every field is a known system',
    harm: 'Most programs break when nobody owns a field definition; an owner that is not a known system is no owner.',
    check(model) {
      const systems = knownSystems(model);
      return sorted(model.fields)
        .filter((f) => !systems.has(f.def.owner))
        .map((f) => ({
          spec: f.at,
          path: [...f.path, 'owner'],
          summary: `Owner "${f.def.owner}" of field "${f.name}" is not a known system (${[...systems].sort().join(', ')}).`,
          detail: 'Use the `system:` of a Source, or list the system under `systems:` in the Workspace.',
        }));
    },
  },
];
