/**
 * The generic HTTP listener that wraps one Emulator: binds 127.0.0.1, reads the body with a size cap, routes
 * `/__sandbox/*` to the admin handler, counts requests per route, applies injected faults, and writes the
 * emulator's answer. It knows nothing about Customer.io or Qualtrics.
 *
 * Order for a non-admin request: read body → count → decide faults → latency → drop (socket destroyed, not
 * applied) | injected 429/5xx (not applied) | emulator.handle (applied) → drop-after-apply (socket destroyed,
 * applied) | answer.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isAdminPath, type AdminHandler } from './admin.ts';
import type { FaultController } from './faults.ts';
import type { RequestCounter } from './request-counter.ts';
import type { Emulator, SandboxRequest, SandboxResponse } from './types.ts';

/** Only loopback: the sandbox accepts fixed, public credentials and must never be reachable from elsewhere. */
export const SANDBOX_HOST = '127.0.0.1';

/** Bodies above this are refused with 413 before an emulator sees them (Customer.io collections go to 10 MB). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface EmulatorServerOptions {
  emulator: Emulator;
  /** Fault scope name of this listener ('track', 'app', 'qualtrics'). */
  scope: string;
  faults: FaultController;
  counter: RequestCounter;
  admin: AdminHandler;
  /** 0 or undefined: a random free port. */
  port?: number;
  maxBodyBytes?: number;
  /** Called after a request that may have changed emulator state (anything but GET/HEAD/OPTIONS). */
  onMutation?(): void;
  /** Called when an emulator throws: that is a sandbox bug, answered with 500. Defaults to stderr. */
  onError?(err: unknown, req: SandboxRequest): void;
}

export interface EmulatorServer {
  /** e.g. http://127.0.0.1:4010 (no trailing slash, no path). */
  url: string;
  port: number;
  close(): Promise<void>;
}

const READ_ONLY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

type BodyResult = { ok: true; body: Buffer } | { ok: false; tooLarge: true } | { ok: false; tooLarge: false };

function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        // Keep draining so the client can read our 413 instead of seeing a reset mid-upload.
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? { ok: false, tooLarge: true } : { ok: true, body: Buffer.concat(chunks) }));
    req.on('error', () => resolve({ ok: false, tooLarge: false }));
    req.on('aborted', () => resolve({ ok: false, tooLarge: false }));
  });
}

function toSandboxRequest(req: IncomingMessage, body: Buffer, port: number): SandboxRequest {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  const host = headers.host ?? `${SANDBOX_HOST}:${port}`;
  let url: URL;
  try {
    url = new URL(req.url ?? '/', `http://${host}`);
  } catch {
    url = new URL(req.url ?? '/', `http://${SANDBOX_HOST}:${port}`);
  }
  return { method: (req.method ?? 'GET').toUpperCase(), url, headers, body };
}

function writeResponse(res: ServerResponse, out: SandboxResponse, method: string): void {
  const headers: Record<string, string> = { ...(out.headers ?? {}) };
  let payload: Buffer | undefined;
  if (out.raw !== undefined) payload = out.raw;
  else if (out.json !== undefined) {
    payload = Buffer.from(JSON.stringify(out.json), 'utf8');
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json; charset=utf-8';
    }
  }
  if (out.status === 204 || out.status === 304) payload = undefined;
  headers['content-length'] = String(payload?.length ?? 0);
  res.writeHead(out.status, headers);
  if (payload !== undefined && method !== 'HEAD') res.end(payload);
  else res.end();
}

function genericFault(status: number, retryAfterSeconds?: number): SandboxResponse {
  const headers: Record<string, string> = {};
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  return { status, headers, json: { error: status === 429 ? 'Too Many Requests' : 'Service Unavailable' } };
}

/**
 * For an emulator without `routeTemplate`: collapse path segments that look like identifiers (anything with a
 * digit other than an API version, a Qualtrics-style `SV_…`/`ML_…` id, an email) into `{id}`, so counts group
 * by endpoint, not by object.
 */
export function guessRouteTemplate(pathname: string): string {
  return pathname
    .split('/')
    .map((seg) => {
      if (/^v\d+$/i.test(seg)) return seg; // API versions (`v1`, `v3`) are part of the route
      return /\d/.test(seg) || /^[A-Z]{1,5}_[A-Za-z0-9]+$/.test(seg) || seg.includes('@') ? '{id}' : seg;
    })
    .join('/');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startEmulatorServer(options: EmulatorServerOptions): Promise<EmulatorServer> {
  const { emulator, faults, counter, admin, scope } = options;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const onError =
    options.onError ??
    ((err: unknown, req: SandboxRequest) => {
      const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`sandbox ${scope}: ${req.method} ${req.url.pathname} failed: ${text}\n`);
    });
  const sockets = new Set<Socket>();
  let port = 0;

  const faultAnswer = (status: number, req: SandboxRequest, retryAfterSeconds?: number): SandboxResponse =>
    emulator.faultResponse?.(status, req, retryAfterSeconds) ?? genericFault(status, retryAfterSeconds);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const read = await readBody(req, maxBodyBytes);
    if (!read.ok) {
      if (read.tooLarge) {
        res.setHeader('connection', 'close');
        writeResponse(res, { status: 413, json: { error: `request body exceeds ${maxBodyBytes} bytes` } }, 'POST');
      } else {
        req.socket.destroy();
      }
      return;
    }
    const sreq = toSandboxRequest(req, read.body, port);

    if (isAdminPath(sreq.url.pathname)) {
      writeResponse(res, await admin(sreq), sreq.method);
      return;
    }

    const template = emulator.routeTemplate
      ? (emulator.routeTemplate(sreq.method, sreq.url.pathname) ?? '<unmatched>')
      : guessRouteTemplate(sreq.url.pathname);
    counter.increment(`${sreq.method} ${template}`);

    const decision = faults.decide(scope, sreq.url.pathname, sreq.method);
    if (decision.latencyMs > 0) await sleep(decision.latencyMs);
    if (decision.outcome === 'drop') {
      req.socket.destroy();
      return;
    }
    if (decision.outcome !== 'none') {
      writeResponse(res, faultAnswer(decision.status ?? 503, sreq, decision.retryAfterSeconds), sreq.method);
      return;
    }

    let out: SandboxResponse;
    try {
      out = await emulator.handle(sreq, decision.service);
    } catch (err) {
      onError(err, sreq);
      out = faultAnswer(500, sreq);
    }
    if (!READ_ONLY_METHODS.has(sreq.method)) options.onMutation?.();
    if (decision.latencyAfterApplyMs) await sleep(decision.latencyAfterApplyMs);
    if (decision.dropAfterApply) {
      req.socket.destroy();
      return;
    }
    writeResponse(res, out, sreq.method);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      process.stderr.write(`sandbox ${scope}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      if (!res.headersSent) {
        try {
          writeResponse(res, { status: 500, json: { error: 'internal sandbox error' } }, 'GET');
        } catch {
          req.socket.destroy();
        }
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // Clients that hold keep-alive connections must not keep a closed sandbox alive; see close().
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, SANDBOX_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${SANDBOX_HOST}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
