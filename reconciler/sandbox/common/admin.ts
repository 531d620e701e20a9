/**
 * The sandbox admin endpoint, served under `/__sandbox/` on every listener (no auth: the listeners bind to
 * 127.0.0.1 only). It lets a test or an operator in another process steer faults, read request counts, wipe
 * state and reach service-specific seeding routes, without linking against the sandbox.
 *
 *   GET    /__sandbox/faults        current FaultConfig (counters show what is left)
 *   PUT    /__sandbox/faults        replace it (body: FaultConfig)
 *   DELETE /__sandbox/faults        clear it
 *   GET    /__sandbox/requests      request counts per `METHOD /route`
 *   POST   /__sandbox/reset         empty every emulator's state and the request counts (faults stay)
 *   *      /__sandbox/<prefix>/…    an AdminExtension (e.g. /__sandbox/customerio/segments)
 */
import type { FaultController } from './faults.ts';
import { parseFaultConfig } from './faults.ts';
import type { RequestCounter } from './request-counter.ts';
import type { AdminExtension, SandboxRequest, SandboxResponse } from './types.ts';

export const ADMIN_PREFIX = '/__sandbox';

export interface AdminContext {
  faults: FaultController;
  counter: RequestCounter;
  /** Empties all emulator state (and whatever else "reset" means for this sandbox). */
  resetAll(): void;
  extensions: ReadonlyArray<AdminExtension>;
  /** Called after an admin request that changed emulator state, so persistence can save it. */
  onMutation?(): void;
}

export type AdminHandler = (req: SandboxRequest) => Promise<SandboxResponse>;

export function isAdminPath(pathname: string): boolean {
  return pathname === ADMIN_PREFIX || pathname.startsWith(`${ADMIN_PREFIX}/`);
}

function error(status: number, message: string): SandboxResponse {
  return { status, json: { error: message } };
}

/** Parses a JSON request body; undefined for an empty body. Throws SyntaxError on malformed JSON. */
export function parseJsonBody(body: Buffer): unknown {
  const text = body.toString('utf8').trim();
  if (text === '') return undefined;
  return JSON.parse(text) as unknown;
}

export function createAdminHandler(ctx: AdminContext): AdminHandler {
  return async (req) => {
    const path = req.url.pathname.slice(ADMIN_PREFIX.length) || '/';
    const method = req.method;

    if (path === '/faults') {
      if (method === 'GET') return { status: 200, json: ctx.faults.get() };
      if (method === 'DELETE') {
        ctx.faults.clear();
        return { status: 200, json: ctx.faults.get() };
      }
      if (method === 'PUT') {
        let body: unknown;
        try {
          body = parseJsonBody(req.body) ?? {};
        } catch {
          return error(400, 'body is not valid JSON');
        }
        const parsed = parseFaultConfig(body);
        if (!parsed.ok) return error(400, `invalid fault config: ${parsed.message}`);
        ctx.faults.set(parsed.value);
        return { status: 200, json: ctx.faults.get() };
      }
      return error(405, `${method} is not supported on ${ADMIN_PREFIX}/faults (GET, PUT, DELETE)`);
    }
    if (path === '/requests') {
      if (method === 'GET') return { status: 200, json: ctx.counter.snapshot() };
      if (method === 'DELETE') {
        ctx.counter.reset();
        return { status: 200, json: {} };
      }
      return error(405, `${method} is not supported on ${ADMIN_PREFIX}/requests (GET, DELETE)`);
    }
    if (path === '/reset') {
      if (method !== 'POST') return error(405, `use POST ${ADMIN_PREFIX}/reset`);
      ctx.resetAll();
      ctx.onMutation?.();
      return { status: 200, json: {} };
    }
    for (const ext of ctx.extensions) {
      const prefix = `/${ext.prefix}`;
      if (path === prefix || path.startsWith(`${prefix}/`)) {
        const res = await ext.handle(req, path.slice(prefix.length) || '/');
        if (res) {
          if (method !== 'GET' && res.status < 400) ctx.onMutation?.();
          return res;
        }
      }
    }
    return error(404, `no admin route ${method} ${req.url.pathname}`);
  };
}
