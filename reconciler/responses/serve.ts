/**
 * `tidemark responses serve`: a small HTTP server that receives Qualtrics webhook deliveries on one path
 * (POST only), verifies each (webhook.ts), hands it to a sink and logs one line per delivery with the
 * outcome and running counts, never an id or a payload. SIGTERM (or `close()`) stops taking connections
 * and lets the deliveries in flight finish.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleQualtricsWebhook, type WebhookHandlerOptions, type WebhookOutcome } from './webhook-http.ts';

export const DEFAULT_WEBHOOK_PATH = '/qualtrics/responses';

export interface WebhookServerOptions extends WebhookHandlerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** The one path deliveries are accepted on (default /qualtrics/responses). */
  path?: string;
  /** One line per delivery (no newline). */
  log?(line: string): void;
}

export interface RunningWebhookServer {
  url: string;
  port: number;
  /** Outcomes so far, by outcome. */
  counts: Record<WebhookOutcome['outcome'], number>;
  /** Stops accepting connections; resolves once the requests in flight are answered. */
  close(): Promise<void>;
}

/** `200 accepted (accepted 3, duplicate 1, refused 0, failed 0)`: the counts stand in for ids. */
export function outcomeLine(o: WebhookOutcome, counts: RunningWebhookServer['counts']): string {
  const what = o.reason ? `${o.outcome}: ${o.reason}` : o.outcome;
  return `webhook ${o.status} ${what} (accepted ${counts.accepted}, duplicate ${counts.duplicate}, refused ${counts.refused}, failed ${counts.failed})`;
}

export async function startWebhookServer(o: WebhookServerOptions): Promise<RunningWebhookServer> {
  const route = o.path ?? DEFAULT_WEBHOOK_PATH;
  const counts = { accepted: 0, duplicate: 0, refused: 0, failed: 0 };
  const server: Server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://receiver').pathname;
    if (pathname !== route) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(`${JSON.stringify({ outcome: 'refused', reason: 'not_found' })}\n`);
      req.resume();
      return;
    }
    void handleQualtricsWebhook(req, res, {
      ...o,
      onOutcome: (outcome) => {
        counts[outcome.outcome]++;
        o.log?.(outcomeLine(outcome, counts));
        o.onOutcome?.(outcome);
      },
    });
  });
  // Qualtrics waits about 16 s; a client that trickles its request longer than this is not Qualtrics.
  server.requestTimeout = 15_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${addr.port}${route}`,
    port: addr.port,
    counts,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
