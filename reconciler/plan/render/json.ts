/** The plan for machines: canonical JSON, so equal plans are equal bytes whatever order their keys were built in. */
import { canonicalJson } from '../../core/digest.ts';
import type { Plan } from '../plan.ts';

export { canonicalJson };

/** The plan as `--format json` and the saved plan artifact: canonical JSON with a trailing newline. */
export function renderPlanJson(plan: Plan): string {
  return `${canonicalJson(plan)}\n`;
}
