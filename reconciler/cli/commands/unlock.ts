import { parseArgs } from 'node:util';
import { type Command } from '../command.ts';
import { applyLock, releaseLock } from '../../composition/state-admin.ts';
import { withEnvironment, environmentFlags } from '../environment.ts';

export const unlockCommand: Command = {
  name: 'unlock',
  summary: 'Show who holds the apply lock, and release it',
  usage: `Usage: tidemark unlock [--env E] [--force] [--id LOCK_ID]

Without --force, shows the holder. A lock whose holder died (crashed process, expired lease) is taken
over automatically by the next apply; --force releases a lock that is still held: use it only when you
know the holder is gone.
`,
  async run(args, ctx) {
    const { values } = parseArgs({ args, options: { ...environmentFlags, force: { type: 'boolean' }, id: { type: 'string' } }, strict: true });
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
