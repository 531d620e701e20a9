import { parseArgs } from 'node:util';
import { applyHistory, listManaged, unprotect } from '../../composition/state-admin.ts';
import { UsageError, type Command } from '../command.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';

export const stateCommand: Command = {
  name: 'state',
  summary: 'List the objects tidemark manages; release prevent_destroy; show apply history',
  usage: `Usage: tidemark state list [--env E]
       tidemark state unprotect ADDRESS [--env E]
       tidemark state history [--env E]

list       every managed object with its remote id
unprotect  clear prevent_destroy on an object whose spec is gone, so --allow-delete can delete it
history    the latest apply runs and their outcome
`,
  async run(args, ctx) {
    const { values, positionals } = parseArgs({ args, options: environmentFlags, allowPositionals: true, strict: true });
    const [sub, address] = positionals;
    if (!sub || !['list', 'unprotect', 'history'].includes(sub)) throw new UsageError('use `state list`, `state unprotect ADDRESS` or `state history`');
    if (sub === 'unprotect' && !address) throw new UsageError('give the ADDRESS to unprotect');
    return withEnvironment(ctx, values, async (ws) => {
      if (sub === 'list') {
        const all = await listManaged(ws);
        if (!all.length) ctx.stdout.write(`Nothing is managed in ${ws.conn.environment} yet.\n`);
        for (const m of all) ctx.stdout.write(`${m.address}\t${m.remoteId}${m.preventDestroy ? '\tprevent_destroy' : ''}\n`);
        return 0;
      }
      if (sub === 'history') {
        for (const r of await applyHistory(ws)) ctx.stdout.write(`${r.startedAt}\t${r.status}\t${r.who}${r.error ? `\t${r.error}` : ''}\n`);
        return 0;
      }
      if (!(await unprotect(ws, address!))) {
        ctx.stderr.write(`tidemark state: ${address} is not managed in ${ws.conn.environment}\n`);
        return 1;
      }
      ctx.stdout.write(`${address} is no longer protected. \`tidemark plan --allow-delete\` will now plan its deletion if its spec is gone.\n`);
      return 0;
    });
  },
};
