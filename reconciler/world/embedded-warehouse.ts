/**
 * The embedded warehouse: PGlite (PostgreSQL compiled to WebAssembly, in this process) served on
 * 127.0.0.1 by PGlite's own wire-protocol server (@electric-sql/pglite-socket). The Postgres connector
 * reaches it through a `postgres://` URL exactly as it reaches a real server: the same `pg` driver, the
 * same cursor, the same `:last_sync_at` binding, the same session TimeZone. Nothing in the sync engine
 * knows which one it talks to.
 *
 * Loaded with the Hearth & Harvest world at `now` on each start: generating and loading the default
 * 5,000 customers takes a few seconds, less than keeping a copy on disk in step with the clock would cost
 * to get right.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { loadWarehouse } from './warehouse.ts';
import type { WorldOptions } from './hearth-and-harvest.ts';

export interface EmbeddedWarehouse {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`: what WAREHOUSE_URL is set to for the run. */
  url: string;
  /** Rows loaded, by table. */
  counts: Record<string, number>;
  close(): Promise<void>;
}

export async function startEmbeddedWarehouse(world: WorldOptions): Promise<EmbeddedWarehouse> {
  const db = await PGlite.create();
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0 });
  try {
    await server.start();
    const address = (server as unknown as { server?: { address(): { port: number } | string | null } }).server?.address();
    if (!address || typeof address === 'string') throw new Error('the embedded warehouse did not report its port');
    const url = `postgres://postgres@127.0.0.1:${address.port}/postgres`;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let counts: Record<string, number>;
    try {
      counts = await loadWarehouse(client, world);
    } finally {
      await client.end();
    }
    return {
      url,
      counts,
      async close() {
        await server.stop();
        await db.close();
      },
    };
  } catch (err) {
    await server.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}
