import { hasErrors } from '../../core/diagnostics.ts';
import { loadSpecs } from '../../spec/load.ts';
import type { Command } from '../command.ts';
import { environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import {
  renderDiagnosticsText,
  renderGithubAnnotations,
  renderSummaryText,
  renderSuppressedText,
  renderValidationJson,
} from '../../plan/render/diagnostics.ts';
import { styleFor } from '../../core/style.ts';

const line = {
  command: 'validate',
  options: {
    specs: environmentFlags.specs,
    format: formatOption(['text', 'json', 'github'], 'text (default), json, or github (workflow-command annotations for PRs)'),
  },
} as const satisfies CommandLine;

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check the specs: schema, references and policy rules (exit 0 clean, 1 on errors)',
  line,
  usage: renderUsage(line, {
    synopsis: ['validate [options]'],
    intro: `Reads every .yaml/.yml file under the specs folder (default: specs/) and reports every problem at
once, each with its file:line:col, a stable code and what to do about it.`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    const format = values.format ?? 'text';
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
