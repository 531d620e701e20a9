import { sorted } from '../model.ts';
import type { Finding, Rule } from './rule.ts';

export const identityRules: Rule[] = [
  {
    code: 'ID001',
    family: 'identity',
    severity: 'error',
    title: 'Exactly one Workspace with one primary identifier',
    harm: 'Without a single identifier treated as truth across tools, syncs and surveys match different people and profiles fragment.',
    check(model) {
      const any = [...model.sources.values(), ...model.segments.values(), ...model.surveyTargets.values()][0];
      if (model.workspace || !any) return [];
      return [{ spec: any, path: ['kind'], summary: 'No Workspace spec found: declare one with `identity.primary` (id or email) and its environments.' }];
    },
  },
  {
    code: 'ID002',
    family: 'identity',
    severity: 'error',
    title: 'Every source maps to the primary identifier',
    harm: 'A source keyed by another identifier creates duplicate profiles or overwrites the wrong person.',
    check(model) {
      const primary = model.workspace?.spec.identity.primary;
      if (!primary) return [];
      return sorted(model.sources)
        .filter((s) => s.spec.records !== 'object' && s.spec.identity.as !== primary)
        .map((s) => ({
          spec: s,
          path: ['identity', 'as'],
          summary: `Source "${s.name}" identifies people by ${s.spec.identity.as}, but the workspace's primary identifier is ${primary}.`,
          detail: `Map a column holding the ${primary} (join it upstream if needed), so every write lands on the same profile.`,
        }));
    },
  },
  {
    code: 'ID003',
    family: 'identity',
    severity: 'error',
    title: 'Survey responses can be tied back to a person',
    harm: 'If Qualtrics cannot tie a response back to the same person, profiles fragment and reason-code audiences are unusable.',
    check(model) {
      const ws = model.workspace?.spec;
      if (!ws) return [];
      const out: Finding[] = [];
      for (const t of sorted(model.surveyTargets)) {
        if (t.spec.identifier === ws.identity.primary) continue;
        const carried = ws.identity.immutable_id && t.spec.payload.includes(ws.identity.immutable_id);
        if (!carried) {
          out.push({
            spec: t,
            path: ['identifier'],
            summary: `Survey target "${t.name}" sends contacts by ${t.spec.identifier} but the primary identifier is ${ws.identity.primary}, and the ${ws.identity.primary} is not carried in the payload.`,
            detail: `Use identifier: ${ws.identity.primary}${ws.identity.immutable_id ? `, or add ${ws.identity.immutable_id} to the payload` : ''}.`,
          });
        }
      }
      return out;
    },
  },
  {
    code: 'ID004',
    family: 'identity',
    severity: 'warning',
    title: 'Email as the only key while an immutable id exists',
    harm: 'People change emails; anchoring on email splits one customer into two profiles. Anchor on the customer id and keep email as an attribute.',
    check(model) {
      const ws = model.workspace;
      if (!ws || ws.spec.identity.primary !== 'email') return [];
      const idField =
        ws.spec.identity.immutable_id ??
        sorted(model.fields).find((f) => f.def.nature === 'identifier' && f.def.format !== 'email')?.name;
      if (!idField) return [];
      return [{
        spec: ws,
        path: ['identity', 'primary'],
        summary: `The primary identifier is email although an immutable id ("${idField}") exists.`,
        detail: 'Switch identity.primary to id when you can; keep email as an attribute.',
      }];
    },
  },
  {
    code: 'ID005',
    family: 'identity',
    severity: 'error',
    title: 'Normalisation declared for email and phone',
    harm: 'Un-normalised email casing/whitespace or phone formats make the same person look like two, so identity matching fails.',
    check(model) {
      const ws = model.workspace;
      if (!ws) return [];
      const norm = ws.spec.normalization;
      const usesEmail =
        ws.spec.identity.primary === 'email' ||
        [...model.sources.values()].some((s) => s.spec.identity.as === 'email' || Object.keys(s.spec.fields).some((f) => model.fields.get(f)?.def.format === 'email')) ||
        [...model.surveyTargets.values()].some((t) => t.spec.identifier === 'email');
      const usesPhone = [...model.sources.values()].some(
        (s) => s.spec.identity.as === 'phone' || Object.keys(s.spec.fields).some((f) => model.fields.get(f)?.def.format === 'phone'),
      );
      const out: Finding[] = [];
      if (usesEmail && !norm?.email) {
        out.push({ spec: ws, path: norm ? ['normalization'] : ['identity'], summary: 'Emails are synced or matched but no email normalisation is declared (normalization.email).' });
      }
      if (usesPhone && !norm?.phone) {
        out.push({ spec: ws, path: norm ? ['normalization'] : ['identity'], summary: 'Phone numbers are synced but no phone normalisation is declared (normalization.phone with format e164 and default_country).' });
      }
      return out;
    },
  },
];
