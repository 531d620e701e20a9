import { adoptDrift, type AdoptOutcome } from '../../composition/adopt.ts';
import { detectDrift } from '../../composition/use-cases.ts';
import { checkSurveyPayloads } from '../../composition/survey-mapping.ts';
import { canonicalJson } from '../../core/digest.ts';
import { styleFor } from '../../core/style.ts';
import type { Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'drift',
  options: {
    ...environmentFlags,
    format: formatOption(['text', 'json']),
    'detailed-exitcode': { type: 'boolean', description: 'exit 0 when nothing drifted, 2 when something did, 1 on error' },
    adopt: {
      type: 'boolean',
      description: 'rewrite the specs to ask for what is live, for the attributes that drifted (comments and formatting kept; each file:line listed); exit 1 and write nothing if any cannot be',
    },
  },
} as const satisfies CommandLine;

export const driftCommand: Command = {
  name: 'drift',
  summary: 'Show what changed in Customer.io or Qualtrics outside tidemark',
  line,
  usage: renderUsage(line, {
    synopsis: ['drift [options]'],
    intro: `Compares the last applied values of every managed object with what is live now, and lists unmanaged
objects whose names match specs (candidates for \`tidemark import\`).`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    return withEnvironment(ctx, values, async (ws) => {
      const report = await detectDrift(ws);
      // Surveys are not managed objects, but CX editing one under a target is drift all the same.
      const surveys = (await checkSurveyPayloads(ws)).findings.filter((f) => f.status !== 'ok' && f.status !== 'unchecked');
      const adopted = values.adopt ? await adoptDrift(ws, report) : undefined;
      if (values.format === 'json') {
        ctx.stdout.write(`${canonicalJson({ format_version: 1, ...report, surveys, target: publicTarget(ws.conn.target), ...(adopted ? { adopt: adoptJson(adopted) } : {}) })}\n`);
      } else {
        const style = styleFor(ctx.stdout, ctx.env);
        ctx.stdout.write(`Drift of ${style.bold(report.environment)} on ${ws.conn.target.label}\n`);
        for (const f of surveys) {
          const what =
            f.status === 'drift'
              ? `no longer reads ${f.notRead.map((n) => (n.reason === 'case' ? `${n.field} (it reads ${n.surveyField})` : n.field)).join(', ')}, which the target sends: its sends are stopped until they match`
              : f.status === 'missing_survey'
                ? 'does not exist'
                : 'has no flow tidemark could read';
          ctx.stdout.write(`${style.yellow('changed')} ${style.bold(f.address)}: survey ${f.survey} ${what}\n`);
        }
        if (report.items.length === 0 && surveys.length === 0) ctx.stdout.write(`No drift in ${report.environment}: every managed object is as tidemark last applied it.\n`);
        for (const item of report.items) {
          const label = item.type === 'deleted' ? style.red('deleted') : item.type === 'changed' ? style.yellow('changed') : style.dim('unmanaged');
          ctx.stdout.write(`${label} ${style.bold(item.address)}${item.remoteId ? ` (${item.remoteId})` : ''}: ${item.message}\n`);
          for (const f of item.fields) ctx.stdout.write(`    ${f.name}: ${JSON.stringify(f.applied ?? null)} (applied) -> ${JSON.stringify(f.live ?? null)} (live)\n`);
        }
        if (adopted) ctx.stdout.write(renderAdoption(adopted));
      }
      if (adopted?.status === 'refused') {
        ctx.stderr.write(`tidemark: drift --adopt wrote nothing:\n${adopted.problems.map((p) => `  ${p}\n`).join('')}`);
        return 1;
      }
      const drifted = report.items.some((i) => i.type !== 'unmanaged_match') || surveys.length > 0;
      return values['detailed-exitcode'] && drifted ? 2 : 0;
    });
  },
};

function renderAdoption(o: AdoptOutcome): string {
  const out: string[] = [];
  if (o.status === 'adopted') {
    out.push(`Adopted into the specs (they now ask for what is live): ${o.changes.length} value(s) in ${new Set(o.changes.map((c) => c.file)).size} file(s)`);
    for (const c of o.changes) out.push(`  ${c.file}:${c.line}  ${c.address} ${c.attribute}: ${JSON.stringify(c.from ?? null)} -> ${JSON.stringify(c.to)}`);
  } else if (o.status === 'nothing') {
    out.push('Nothing to adopt: the specs already ask for every live value that drifted.');
  }
  if (o.notAdopted.length) {
    out.push('Not adopted:');
    for (const n of o.notAdopted) out.push(`  ${n.address}: ${n.reason}`);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

function adoptJson(o: AdoptOutcome) {
  return {
    status: o.status,
    changes: o.status === 'adopted' ? o.changes.map((c) => ({ file: c.file, line: c.line, address: c.address, attribute: c.attribute, from: c.from ?? null, to: c.to })) : [],
    not_adopted: o.notAdopted,
    problems: o.status === 'refused' ? o.problems : [],
  };
}
