import { importObject, whoAmI } from '../../composition/use-cases.ts';
import { UsageError, type Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'import',
  positionals: true,
  options: {
    ...environmentFlags,
    format: formatOption(['text', 'json'], 'text (default), or json: one document on stdout (imported or refused, and where)'),
  },
} as const satisfies CommandLine;

export const importCommand: Command = {
  name: 'import',
  summary: 'Adopt an existing Customer.io or Qualtrics object under a declared address',
  line,
  usage: renderUsage(line, {
    synopsis: ['import ADDRESS REMOTE_ID [options]'],
    intro: `Records that the object REMOTE_ID is managed by the spec at ADDRESS (e.g.
customerio.segment.vip_customers 42). Nothing is changed remotely; run \`tidemark plan\` afterwards to see
any remaining differences. \`tidemark plan --adopt-by-name\` proposes imports by matching names.`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    if (positionals.length !== 2) throw new UsageError('give ADDRESS and REMOTE_ID');
    const [address, remoteId] = positionals as [string, string];
    const json = values.format === 'json';
    return withEnvironment(ctx, values, async (ws) => {
      const r = await importObject(ws, address, remoteId, whoAmI(ctx.env));
      const where = { format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target) };
      if (r.status === 'refused') {
        if (json) ctx.stdout.write(`${JSON.stringify({ ...where, status: 'refused', address, remote_id: remoteId, reason: r.reason }, null, 2)}\n`);
        ctx.stderr.write(`tidemark import: ${r.reason}\n`);
        return 1;
      }
      if (json) ctx.stdout.write(`${JSON.stringify({ ...where, status: 'imported', address: r.address, remote_id: r.remoteId, name: r.name }, null, 2)}\n`);
      else ctx.stdout.write(`Imported ${r.remoteId} ("${r.name}") as ${r.address}. Run \`tidemark plan\` to see what differs from the spec.\n`);
      return 0;
    });
  },
};
