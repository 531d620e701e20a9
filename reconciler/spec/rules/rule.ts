/**
 * A policy rule turns one piece of the field guides ("common mistakes", checklists) into a check.
 * Rules are pure functions of the resolved model; they report a spec and a path, and the engine turns
 * that into a located diagnostic with the rule's (possibly overridden) severity.
 */
import type { Path, Severity, SourceRange } from '../../core/diagnostics.ts';
import type { Located, SpecModel } from '../model.ts';

export type RuleFamily = 'identity' | 'ownership' | 'syncs' | 'segments' | 'surveys' | 'secrets';

export interface Finding {
  spec: Located<unknown>;
  path: Path;
  summary: string;
  detail?: string;
  /** Point at the key rather than the value (e.g. the name of an offending mapping). */
  key?: boolean;
  /** Where it is, when no path leads there (a comment). */
  source?: SourceRange;
}

export interface Rule {
  code: string;
  family: RuleFamily;
  severity: Severity;
  /** Short title for the catalogue. */
  title: string;
  /** The harm it prevents, in the words of the field guides. Shown as the diagnostic detail. */
  harm: string;
  /** Neither `policy:` nor `suppress:` may switch it off or downgrade it (trying to is an error). */
  locked?: boolean;
  check(model: SpecModel): Finding[];
}
