import { type Command } from '../command.ts';
import { applyLock, releaseLock } from '../../composition/state-admin.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';
import { parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'unlock',
  options: {
    ...environmentFlags,
    force: { type: 'boolean', description: 'release the lock even though it is still held (only when its holder is really gone)' },
    id: { type: 'string', value: 'LOCK_ID', description: 'the lock to release (default: the one held now)' },
  },
} as const satisfies CommandLine;

export const unlockCommand: Command = {
  name: 'unlock',
  summary: 'Show who holds the apply lock, and release it',
  line,
  usage: renderUsage(line, {
    synopsis: ['unlock [--force] [--id LOCK_ID] [options]'],
    intro: `Without --force, shows the holder. A lock whose holder died (crashed process, expired lease) is taken
over automatically by the next apply; --force releases a lock that is still held: use it only when you
know the holder is gone.`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    return withEnvironment(ctx, values, async (ws) => {
      const info = await applyLock(ws);
      if (!info) {
        ctx.stdout.write(`No lock is held for ${ws.conn.environment}.\n`);
        return 0;
      }
      ctx.stdout.write(
        `Lock ${info.id}: ${info.operation} by ${info.who} (pid ${info.pid} on ${info.hostname}) since ${info.acquiredAt}, last heartbeat ${info.heartbeatAt}${info.stale ? `; stale (${info.staleReason})` : ''}.\n`,
      );
      if (!values.force) {
        if (!info.stale) ctx.stdout.write('Re-run with --force to release it (only if that holder is really gone).\n');
        return 0;
      }
      const released = await releaseLock(ws, values.id ?? info.id);
      ctx.stdout.write(released ? 'Released.\n' : 'The lock changed hands meanwhile; nothing released.\n');
      return released ? 0 : 1;
    });
  },
};
