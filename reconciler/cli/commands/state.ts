import { applyHistory, listManaged, unprotect } from '../../composition/state-admin.ts';
import { redact } from '../../core/redact.ts';
import { UsageError, type Command } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'state',
  subcommands: ['list', 'unprotect', 'history'],
  options: {
    ...environmentFlags,
    format: formatOption(['text', 'json'], 'text (default), or json: one document on stdout, saying where it ran'),
  },
} as const satisfies CommandLine;

export const stateCommand: Command = {
  name: 'state',
  summary: 'List the objects tidemark manages; release prevent_destroy; show apply history',
  line,
  usage: renderUsage(line, {
    synopsis: ['state list [options]', 'state unprotect ADDRESS [options]', 'state history [options]'],
    intro: `list       every managed object with its remote id
unprotect  clear prevent_destroy on an object whose spec is gone, so --allow-delete can delete it
history    the latest apply runs and their outcome`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    const [sub, address] = positionals;
    if (!sub || !['list', 'unprotect', 'history'].includes(sub)) throw new UsageError('use `state list`, `state unprotect ADDRESS` or `state history`');
    if (sub === 'unprotect' && !address) throw new UsageError('give the ADDRESS to unprotect');
    const json = values.format === 'json';
    return withEnvironment(ctx, values, async (ws) => {
      const where = { format_version: 1, environment: ws.conn.environment, target: publicTarget(ws.conn.target) };
      const emit = (doc: Record<string, unknown>) => ctx.stdout.write(`${JSON.stringify({ ...where, ...doc }, null, 2)}\n`);
      if (sub === 'list') {
        const all = await listManaged(ws);
        if (json) {
          emit({ objects: all.map((m) => ({ address: m.address, kind: m.kind, remote_id: m.remoteId, prevent_destroy: m.preventDestroy, depends_on: m.dependsOn })) });
          return 0;
        }
        if (!all.length) ctx.stdout.write(`Nothing is managed in ${ws.conn.environment} yet.\n`);
        for (const m of all) ctx.stdout.write(`${m.address}\t${m.remoteId}${m.preventDestroy ? '\tprevent_destroy' : ''}\n`);
        return 0;
      }
      if (sub === 'history') {
        const runs = await applyHistory(ws);
        if (json) {
          emit({
            runs: runs.map((r) => ({ id: r.id, status: r.status, who: r.who, started_at: r.startedAt, finished_at: r.finishedAt ?? null, ...(r.error ? { error: redact(r.error) } : {}) })),
          });
          return 0;
        }
        for (const r of runs) ctx.stdout.write(`${r.startedAt}\t${r.status}\t${r.who}${r.error ? `\t${r.error}` : ''}\n`);
        return 0;
      }
      const done = await unprotect(ws, address!);
      if (json) emit({ address, unprotected: done });
      if (!done) {
        ctx.stderr.write(`tidemark state: ${address} is not managed in ${ws.conn.environment}\n`);
        return 1;
      }
      if (!json) ctx.stdout.write(`${address} is no longer protected. \`tidemark plan --allow-delete\` will now plan its deletion if its spec is gone.\n`);
      return 0;
    });
  },
};
