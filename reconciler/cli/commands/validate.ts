import { parseArgs } from 'node:util';
import { hasErrors } from '../../core/diagnostics.ts';
import { loadSpecs } from '../../spec/load.ts';
import { UsageError, type Command } from '../command.ts';
import {
  renderDiagnosticsText,
  renderGithubAnnotations,
  renderSummaryText,
  renderSuppressedText,
  renderValidationJson,
} from '../../plan/render/diagnostics.ts';
import { styleFor } from '../../core/style.ts';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check the specs: schema, references and policy rules (exit 0 clean, 1 on errors)',
  usage: `Usage: tidemark validate [--specs DIR] [--format text|json|github]

Reads every .yaml/.yml file under the specs folder (default: specs/) and reports every problem at
once, each with its file:line:col, a stable code and what to do about it.

Options:
  --specs DIR       folder (or single file) of specs (default: specs, or $TIDEMARK_SPECS)
  --format FORMAT   text (default), json, or github (workflow-command annotations for PRs)
`,
  async run(args, ctx) {
    const { values } = parseArgs({
      args,
      options: { specs: { type: 'string' }, format: { type: 'string', default: 'text' } },
      strict: true,
    });
    const format = values.format ?? 'text';
    if (!['text', 'json', 'github'].includes(format)) throw new UsageError(`--format must be text, json or github (got "${format}")`);
    const result = await loadSpecs(values.specs ?? ctx.env.TIDEMARK_SPECS ?? 'specs', ctx.cwd);
    if (format === 'json') {
      ctx.stdout.write(renderValidationJson(result));
    } else if (format === 'github') {
      ctx.stdout.write(renderGithubAnnotations(result.diagnostics));
      ctx.stdout.write(renderSummaryText(result, styleFor({}, ctx.env)));
    } else {
      const style = styleFor(ctx.stdout, ctx.env);
      ctx.stdout.write(renderDiagnosticsText(result.diagnostics, style));
      ctx.stdout.write(renderSuppressedText(result.suppressed, style));
      ctx.stdout.write(renderSummaryText(result, style));
    }
    return hasErrors(result.diagnostics) ? 1 : 0;
  },
};
