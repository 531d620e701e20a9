import { identityRules } from './identity.ts';
import { outcomeRules } from './outcomes.ts';
import { ownershipRules } from './ownership.ts';
import type { Rule } from './rule.ts';
import { secretRules } from './secrets.ts';
import { segmentRules } from './segments.ts';
import { sendWindowRules } from './send-windows.ts';
import { evaluableRules } from './evaluable.ts';
import { surveyRules } from './surveys.ts';
import { syncRules } from './syncs.ts';

/** The rule catalogue, in the order the README documents it. */
export const RULES: Rule[] = [...identityRules, ...ownershipRules, ...syncRules, ...segmentRules, ...evaluableRules, ...surveyRules, ...sendWindowRules, ...outcomeRules, ...secretRules];

export type { Finding, Rule, RuleFamily } from './rule.ts';
