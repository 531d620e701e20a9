import { runSyncJob, selectSources } from '../../composition/sync-job.ts';
import { styleFor, type Style } from '../../core/style.ts';
import type { SyncProgress, SyncReport } from '../../sync/run.ts';
import { UsageError, type Command, type CommandContext } from '../command.ts';
import { publicTarget, withEnvironment, environmentFlags } from '../environment.ts';
import { formatOption, parseCommandLine, renderUsage, type CommandLine } from '../options.ts';
import { count, progressFor, type ProgressClock } from '../progress.ts';

const line = {
  command: 'sync',
  subcommands: ['plan', 'run'],
  options: {
    ...environmentFlags,
    due: { type: 'boolean', only: ['run'], description: 'only the sources whose cron schedule fired since their last successful run' },
    format: formatOption(['text', 'json']),
  },
} as const satisfies CommandLine;

export const syncCommand: Command = {
  name: 'sync',
  summary: 'Plan or run scheduled syncs into Customer.io (only new and changed rows are sent)',
  line,
  usage: renderUsage(line, {
    synopsis: ['sync plan SOURCE [options]', 'sync run [SOURCE...] [--due] [options]'],
    intro: `plan   reads the source and shows what a run would do: new, changed, unchanged, out-of-order,
       rejected and null-blocked rows, per field. Nothing is sent.
run    syncs the given sources (default: all), or with --due those whose cron schedule fired since
       their last successful run. Rejected rows go to a file under the state folder (never to logs).

Off a terminal, progress comes on stderr as plain lines: per source when it starts and ends, and its
counts every 10 s in between.`,
  }),
  async run(args, ctx) {
    const { values, positionals } = parseCommandLine(line, args);
    const [sub, ...names] = positionals;
    if (sub !== 'plan' && sub !== 'run') throw new UsageError('use `sync plan SOURCE` or `sync run [SOURCE...] [--due]`');
    if (sub === 'plan' && names.length !== 1) throw new UsageError('`sync plan` takes exactly one SOURCE');
    return withEnvironment(ctx, values, async (ws) => {
      const selection = await selectSources(ws, names, { due: sub === 'run' && !!values.due });
      if (!selection.ok) throw new UsageError(selection.message);
      const selected = selection.sources;
      if (values.due && !selected.length && values.format !== 'json') ctx.stdout.write('No source is due.\n');
      const style = styleFor(ctx.stdout, ctx.env);
      if (values.format !== 'json' && selected.length > 0) ctx.stdout.write(`${sub === 'plan' ? 'Planning against' : 'Syncing into'} ${ws.conn.target.label} (environment ${style.bold(ws.conn.environment)})\n`);
      const { reports, ok } = await runSyncJob(ws, {
        mode: sub,
        sources: selected,
        env: ctx.env,
        // What the sandbox world stood in for (the embedded warehouse, the exports): never a surprise.
        onWorld: (notes) => {
          for (const n of notes) ctx.stderr.write(`sandbox world: ${n}\n`);
        },
        onSource: (name) => sourceProgress(ctx, 'sync', name),
        onReport: (report) => {
          if (values.format !== 'json') ctx.stdout.write(renderReport(report, style));
        },
      });
      const target = publicTarget(ws.conn.target);
      if (values.format === 'json') ctx.stdout.write(`${JSON.stringify(sub === 'plan' ? { ...reports[0], environment: ws.conn.environment, target } : { format_version: 1, environment: ws.conn.environment, target, runs: reports }, null, 2)}\n`);
      // A partial run (entries wait for the next run) did not do everything it planned either.
      return ok ? 0 : 1;
    });
  },
};


/**
 * A one-line progress bar on a terminal (stderr), nothing otherwise. Reading and sending overlap (rows go
 * out while the source is still read), so the line shows both: how far the read is (a bar when the
 * connector knows the source's size) and how many rows went out.
 */
export function progressPrinter(ctx: Pick<CommandContext, 'stderr'>, name: string, now: () => number = Date.now) {
  const tty = !!ctx.stderr.isTTY;
  let last = 0;
  let read = 0;
  let share: number | undefined;
  let sent = 0;
  return {
    update: (p: SyncProgress) => {
      if (!tty) return;
      if (p.phase === 'reading') {
        read = p.done;
        share = p.fraction;
      } else sent = p.done;
      const t = now();
      if (t - last < 100) return;
      last = t;
      const pct = share !== undefined ? Math.min(100, Math.floor(share * 100)) : undefined;
      const bar = pct !== undefined ? ` [${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ${pct}%` : '';
      const out = sent > 0 ? ` · sent ${sent.toLocaleString('en-US')}` : '';
      ctx.stderr.write(`\r${name}: read ${read.toLocaleString('en-US')} rows${bar}${out}\u001b[K`);
    },
    done: () => {
      if (tty) ctx.stderr.write('\r\u001b[K');
    },
  };
}

/**
 * A source's progress: the bar on a terminal, plain lines (progress.ts) otherwise, e.g.
 * "tidemark sync: crm_customers: 400,000 rows read (40%), 380,000 sent, 12.3 s".
 */
export function sourceProgress(ctx: Pick<CommandContext, 'stderr'>, command: string, name: string, clock?: ProgressClock): { onProgress: (p: SyncProgress) => void; done: () => void } {
  if (ctx.stderr.isTTY) {
    const bar = progressPrinter(ctx, name);
    return { onProgress: bar.update, done: bar.done };
  }
  const lines = progressFor(ctx.stderr, { command, ...(clock ? { clock } : {}) });
  let read = 0;
  let share: number | undefined;
  let sent = 0;
  const detail = () => `${count(read)} rows read${share !== undefined ? ` (${Math.min(100, Math.floor(share * 100))}%)` : ''}${sent ? `, ${count(sent)} sent` : ''}`;
  lines.phase(name);
  return {
    onProgress: (p) => {
      if (p.phase === 'reading') {
        read = p.done;
        share = p.fraction;
      } else sent = p.done;
      lines.update(detail());
    },
    done: () => {
      lines.done(detail());
      lines.close();
    },
  };
}

function renderReport(r: SyncReport, style: Style): string {
  const c = r.counts;
  const outcome = r.status === 'succeeded' ? style.green('succeeded') : r.status === 'partial' ? style.yellow('partial (entries wait for the next run)') : style.red('failed');
  const head = r.mode === 'plan' ? `Sync plan for ${style.bold(r.source)}` : `Sync run of ${style.bold(r.source)}: ${outcome}`;
  const lines = [
    head,
    `  read ${c.read}, rejected ${c.rejected}${c.rejected ? ` (${Object.entries(c.rejected_by_code).sort().map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
    `  new ${c.new}, changed ${c.changed}, unchanged ${c.unchanged}, out of order (older than what was sent) ${c.out_of_order}, duplicate keys ${c.duplicates}`,
  ];
  const blocked = Object.entries(c.null_blocked).sort();
  if (blocked.length) lines.push(`  blanks kept from erasing values: ${blocked.map(([f, n]) => `${f} ${n}`).join(', ')}`);
  const held = Object.entries(c.held_back).sort();
  if (held.length) lines.push(`  updated_at companions held back with their blank state: ${held.map(([f, n]) => `${f} ${n}`).join(', ')}`);
  const erased = Object.entries(c.erased).sort();
  if (erased.length) lines.push(`  blanks erasing clearable fields: ${erased.map(([f, n]) => `${f} ${n}`).join(', ')}`);
  if (c.changed_fields && Object.keys(c.changed_fields).length) lines.push(`  fields changing: ${Object.entries(c.changed_fields).sort().map(([f, n]) => `${f} ${n}`).join(', ')}`);
  if (c.behind_pending) lines.push(`  not newer than an entry waiting from an earlier run (that entry goes instead) ${c.behind_pending}`);
  if (r.mode === 'plan' && c.retried) lines.push(`  entries waiting from earlier runs, to send ${c.retried}`);
  if (r.mode === 'run') {
    // "Sent" is only ever what Customer.io acknowledged.
    lines.push(
      `  sent (acknowledged by Customer.io) ${c.sent}${c.retried ? `, of which waiting from earlier runs ${c.retried}` : ''}, refused for good ${c.refused}, ` +
        `refused for now ${c.retry_later}, not acknowledged ${c.unsent}; waiting for the next run ${c.pending}`,
    );
  }
  if (r.rejects_file) lines.push(`  rejected rows: ${r.rejects_file}`);
  const problems = r.problems ?? (r.error ? [r.error] : []);
  for (const p of problems) lines.push(`  ${style.red(r.status === 'partial' ? 'incomplete' : 'error')}: ${p}`);
  for (const n of r.notes) lines.push(style.dim(`  note: ${n}`));
  return `${lines.join('\n')}\n`;
}
