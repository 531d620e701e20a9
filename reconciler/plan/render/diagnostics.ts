/** Diagnostics as text for people, JSON for machines, and GitHub workflow commands for PR annotations. */
import { countBySeverity, formatLocation, type Diagnostic } from '../../core/diagnostics.ts';
import type { SuppressedFinding, ValidationResult } from '../../spec/validate.ts';
import type { Style } from '../../core/style.ts';

export function renderDiagnosticsText(diags: readonly Diagnostic[], style: Style): string {
  const lines: string[] = [];
  for (const d of diags) {
    const sev = d.severity === 'error' ? style.red('error') : style.yellow('warning');
    const loc = formatLocation(d.source);
    lines.push(`${loc ? `${style.bold(loc)}: ` : ''}${sev} ${style.bold(d.code)} ${d.summary}`);
    if (d.detail) lines.push(style.dim(`    ${d.detail}`));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function renderSummaryText(result: ValidationResult, style: Style): string {
  const { errors, warnings } = countBySeverity(result.diagnostics);
  const kinds = Object.entries(result.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const status = errors > 0 ? style.red('invalid') : style.green('valid');
  const suppressed = result.suppressed.length ? `, ${result.suppressed.length} accepted by suppress` : '';
  return `${status}: ${result.files} file${result.files === 1 ? '' : 's'}${kinds ? ` (${kinds})` : ''}; ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}${suppressed}.\n`;
}

export function renderSuppressedText(list: readonly SuppressedFinding[], style: Style): string {
  return list
    .map((s) => style.dim(`${formatLocation(s.diagnostic.source)}: accepted ${s.diagnostic.code} (${s.reason})`))
    .join('\n')
    .concat(list.length ? '\n' : '');
}

export function renderValidationJson(result: ValidationResult): string {
  const { errors, warnings } = countBySeverity(result.diagnostics);
  return `${JSON.stringify(
    {
      format_version: 1,
      valid: errors === 0,
      summary: { files: result.files, specs: result.counts, errors, warnings, suppressed: result.suppressed.length },
      diagnostics: result.diagnostics,
      suppressed: result.suppressed.map((s) => ({ ...s.diagnostic, reason: s.reason })),
    },
    null,
    2,
  )}\n`;
}

// Workflow command escaping, as GitHub's runner expects it.
const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

export function renderGithubAnnotations(diags: readonly Diagnostic[]): string {
  return diags
    .map((d) => {
      const props: string[] = [];
      if (d.source) {
        props.push(`file=${escapeProperty(d.source.file)}`, `line=${d.source.start.line}`, `col=${d.source.start.col}`);
        if (d.source.end.line !== d.source.start.line || d.source.end.col !== d.source.start.col) {
          props.push(`endLine=${d.source.end.line}`, `endColumn=${d.source.end.col}`);
        }
      }
      props.push(`title=${escapeProperty(d.code)}`);
      const message = d.detail ? `${d.summary}\n${d.detail}` : d.summary;
      return `::${d.severity === 'error' ? 'error' : 'warning'} ${props.join(',')}::${escapeData(message)}\n`;
    })
    .join('');
}
