import { parseArgs } from 'node:util';
import { importObject, whoAmI } from '../../composition/use-cases.ts';
import { UsageError, type Command } from '../command.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';

export const importCommand: Command = {
  name: 'import',
  summary: 'Adopt an existing Customer.io or Qualtrics object under a declared address',
  usage: `Usage: tidemark import ADDRESS REMOTE_ID [--env E]

Records that the object REMOTE_ID is managed by the spec at ADDRESS (e.g.
customerio.segment.vip_customers 42). Nothing is changed remotely; run \`tidemark plan\` afterwards to see
any remaining differences. \`tidemark plan --adopt-by-name\` proposes imports by matching names.
`,
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args, options: environmentFlags, allowPositionals: true, strict: true });
    if (positionals.length !== 2) throw new UsageError('give ADDRESS and REMOTE_ID');
    const [address, remoteId] = positionals as [string, string];
    return withEnvironment(ctx, values, async (ws) => {
      const r = await importObject(ws, address, remoteId, whoAmI(ctx.env));
      if (r.status === 'refused') {
        ctx.stderr.write(`tidemark import: ${r.reason}\n`);
        return 1;
      }
      ctx.stdout.write(`Imported ${r.remoteId} ("${r.name}") as ${r.address}. Run \`tidemark plan\` to see what differs from the spec.\n`);
      return 0;
    });
  },
};
