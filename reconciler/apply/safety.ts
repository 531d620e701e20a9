/**
 * A saved plan is applied only if nothing it was made from has moved: the spec files, the live objects it
 * looked at, and the changes a fresh plan would make (which also catches another apply in between).
 * The refusal names what moved.
 */
import { canonicalJson, digestOf } from '../core/digest.ts';
import type { Plan } from '../plan/plan.ts';

export function planDigest(plan: Plan): string {
  const { created_at: _createdAt, ...rest } = plan;
  return digestOf(rest);
}

/**
 * What moved between a saved plan and a fresh one. `writtenByTidemark` maps addresses that tidemark itself
 * changed since the saved plan was made (another apply, an import) to who did it, so the refusal does not
 * blame "outside tidemark" for what a colleague's apply did.
 */
export function whatMoved(saved: Plan, fresh: Plan, writtenByTidemark: ReadonlyMap<string, string> = new Map()): string[] {
  const out: string[] = [];
  if (saved.environment !== fresh.environment) out.push(`the plan is for environment "${saved.environment}", not "${fresh.environment}"`);
  // A plan from before targets were recorded names none: it cannot show it was made against these services.
  if (saved.target?.id !== fresh.target.id) out.push(`the plan was made against ${saved.target?.label ?? 'unrecorded services'}, and this apply targets ${fresh.target.label}`);
  const files = new Set([...Object.keys(saved.specs.files), ...Object.keys(fresh.specs.files)]);
  for (const f of [...files].sort()) {
    const a = saved.specs.files[f];
    const b = fresh.specs.files[f];
    if (a && !b) out.push(`spec file ${f} was removed`);
    else if (!a && b) out.push(`spec file ${f} was added`);
    else if (a !== b) out.push(`spec file ${f} changed`);
  }
  const objects = new Set([...Object.keys(saved.live.objects), ...Object.keys(fresh.live.objects)]);
  for (const o of [...objects].sort()) {
    const a = saved.live.objects[o];
    const b = fresh.live.objects[o];
    if (a === b) continue;
    const by = writtenByTidemark.get(o);
    if (by !== undefined) out.push(`${o} was changed by ${by} since the plan was made`);
    else if (a === 'absent' || a === undefined) out.push(`${o} appeared in ${o.split('.')[0]} since the plan was made`);
    else if (b === 'absent' || b === undefined) out.push(`${o} was deleted outside tidemark since the plan was made`);
    else out.push(`${o} changed outside tidemark since the plan was made`);
  }
  if (out.length === 0 && canonicalJson(strip(saved)) !== canonicalJson(strip(fresh))) {
    const written = [...writtenByTidemark].sort(([x], [y]) => (x < y ? -1 : 1)).map(([address, by]) => `${address} (${by})`);
    out.push(
      written.length
        ? `the recorded state moved since the plan was made: ${written.join(', ')}; make a new plan`
        : 'the recorded state moved since the plan was made (another apply ran, or an import): make a new plan',
    );
  }
  return out;
}

function strip(p: Plan) {
  return p.changes.map(({ source: _s, ...c }) => c);
}
