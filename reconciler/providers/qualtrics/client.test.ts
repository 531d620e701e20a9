import { zipSync, strToU8 } from 'fflate';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProviderError } from '../errors.ts';
import { LimiterRegistry } from '../http/rate-limiter.ts';
import { ManualTimer } from '../http/timer.ts';
import { collectAll, parseResponseExport, QualtricsClient, qualtricsConfigFromEnv } from './client.ts';

type Handler = (req: IncomingMessage, url: URL, body: unknown, res: ServerResponse) => void;

interface Srv {
  server: Server;
  base: string;
  seen: Array<{ method: string; url: string; token: string | undefined; body: unknown }>;
  handler: Handler;
}

const ok = (res: ServerResponse, result: unknown, extraMeta: Record<string, unknown> = {}, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ result, meta: { httpStatus: `${status} - OK`, requestId: 'req-1', ...extraMeta } }));
};
const fail = (res: ServerResponse, status: number, errorMessage: string, errorCode: string, extraMeta: Record<string, unknown> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ meta: { httpStatus: `${status} - Error`, requestId: 'req-err', error: { errorMessage, errorCode }, ...extraMeta } }));
};

async function start(): Promise<Srv> {
  const s = { seen: [] } as unknown as Srv;
  s.handler = (_req, _url, _body, res) => ok(res, {});
  s.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = text ? JSON.parse(text) : undefined;
      const token = req.headers['x-api-token'];
      s.seen.push({ method: req.method!, url: req.url!, token: typeof token === 'string' ? token : undefined, body });
      s.handler(req, new URL(req.url!, s.base), body, res);
    });
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  s.base = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  return s;
}

let a: Srv;
let b: Srv;
beforeAll(async () => {
  a = await start();
  b = await start();
});
afterAll(async () => {
  for (const s of [a, b]) {
    s.server.closeAllConnections();
    await new Promise((r) => s.server.close(r));
  }
});
afterEach(() => {
  for (const s of [a, b]) {
    s.seen = [];
    s.handler = (_req, _url, _body, res) => ok(res, {});
  }
});

const TOKEN = 'qualtrics-token-0123456789';

function client(extra: Partial<ConstructorParameters<typeof QualtricsClient>[0]> = {}): QualtricsClient {
  const timer = new ManualTimer(0);
  return new QualtricsClient({ apiToken: TOKEN, baseUrl: a.base, timer, limiters: new LimiterRegistry(timer), random: () => 0, ...extra });
}

describe('envelope and errors', () => {
  it('sends X-API-TOKEN under /API/v3 and unwraps result', async () => {
    a.handler = (_req, _url, _body, res) => ok(res, { brandId: 'acme', userId: 'UR_1', datacenter: 'iad1' });
    const me = await client().whoami();
    expect(me).toMatchObject({ brandId: 'acme', datacenter: 'iad1' });
    expect(a.seen[0]).toMatchObject({ method: 'GET', url: '/API/v3/whoami', token: TOKEN });
  });

  it('maps meta.error into the ProviderError and keeps the token out of it', async () => {
    a.handler = (_req, _url, _body, res) => fail(res, 400, `Invalid request for ${TOKEN}`, 'RP_10');
    const err = (await client()
      .createDistribution({
        message: { libraryId: 'UR_1', messageId: 'MS_1' },
        recipients: { mailingListId: 'CG_1' },
        header: { fromName: 'x', fromEmail: 'x@y.z', subject: 's' },
        surveyLink: { surveyId: 'SV_1', expirationDate: '2030-01-10T00:00:00Z' },
        sendDate: '2030-01-01T00:00:00Z',
      })
      .catch((e: unknown) => e)) as ProviderError;
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ provider: 'qualtrics', status: 400, code: 'RP_10', requestId: 'req-err', retryable: false });
    expect(JSON.stringify(err)).not.toContain(TOKEN);
    expect(err.message).toContain('[redacted]');
  });

  it('refuses a distribution without a usable expiration before sending', async () => {
    const c = client();
    const base = {
      message: { libraryId: 'UR_1', messageId: 'MS_1' },
      recipients: { mailingListId: 'CG_1' },
      header: { fromName: 'x', fromEmail: 'x@y.z', subject: 's' },
      sendDate: '2030-01-05T00:00:00Z',
    };
    await expect(c.createDistribution({ ...base, surveyLink: { surveyId: 'SV_1', expirationDate: 'soon' } })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(c.createDistribution({ ...base, surveyLink: { surveyId: 'SV_1', expirationDate: '2030-01-01T00:00:00Z' } })).rejects.toThrow(/after sendDate/);
    expect(a.seen).toHaveLength(0);
  });

  it('treats 404 as absent for reads and deletes', async () => {
    a.handler = (_req, _url, _body, res) => fail(res, 404, 'Not found', 'GS_404');
    const c = client();
    expect(await c.getMailingList('POOL_1', 'CG_1')).toBeUndefined();
    expect(await c.deleteMailingList('POOL_1', 'CG_1')).toBe(false);
  });
});

describe('pagination', () => {
  it('follows nextPage URLs on the same host and stops at null', async () => {
    a.handler = (_req, url, _body, res) => {
      const token = url.searchParams.get('skipToken');
      const n = token ? Number(token) : 0;
      const elements = Array.from({ length: n < 2 ? 50 : 3 }, (_, i) => ({ contactId: `CID_${n * 50 + i}` }));
      const nextPage = n < 2 ? `${a.base}${url.pathname}?pageSize=50&skipToken=${n + 1}` : null;
      ok(res, { elements, nextPage });
    };
    const contacts = await collectAll(client().listMailingListContacts('POOL_1', 'CG_1'));
    expect(contacts).toHaveLength(103);
    expect(a.seen.map((s) => s.url)).toEqual([
      '/API/v3/directories/POOL_1/mailinglists/CG_1/contacts?pageSize=50',
      '/API/v3/directories/POOL_1/mailinglists/CG_1/contacts?pageSize=50&skipToken=1',
      '/API/v3/directories/POOL_1/mailinglists/CG_1/contacts?pageSize=50&skipToken=2',
    ]);
  });

  it('never follows a nextPage link to a foreign host with the token', async () => {
    a.handler = (_req, _url, _body, res) => ok(res, { elements: [{ directoryId: 'POOL_1' }], nextPage: `${b.base}/API/v3/directories?skipToken=x` });
    await expect(collectAll(client().listDirectories())).rejects.toMatchObject({ code: 'untrusted_url' });
    expect(b.seen).toHaveLength(0);
  });

  it('sends a bare-token nextPage back as skipToken', async () => {
    a.handler = (_req, url, _body, res) =>
      url.searchParams.get('skipToken') ? ok(res, { elements: [{ directoryId: 'POOL_2' }], nextPage: null }) : ok(res, { elements: [{ directoryId: 'POOL_1' }], nextPage: 'tok' });
    const dirs = await collectAll(client().listDirectories());
    expect(dirs.map((d) => d.directoryId)).toEqual(['POOL_1', 'POOL_2']);
    expect(a.seen[1]!.url).toBe('/API/v3/directories?skipToken=tok');
  });
});

describe('datacenter handling', () => {
  it('moves to the host named in a proxied notice and repeats a 400 there once', async () => {
    const hostB = new URL(b.base).host;
    const notice = `Request proxied. For faster response times, use this host instead: ${hostB}`;
    a.handler = (_req, url, _body, res) => {
      if (url.pathname.endsWith('/whoami')) ok(res, { brandId: 'acme', datacenter: 'az1' }, { notice });
      else fail(res, 400, 'Export not available on a proxied host', 'PROXY', { notice });
    };
    b.handler = (_req, url, _body, res) => ok(res, { progressId: 'ES_1', percentComplete: 0, status: 'inProgress' });
    const notices: string[] = [];
    const c = client({ onNotice: (n) => notices.push(n) });
    await c.whoami();
    expect(c.baseUrl).toBe(`${b.base}/API/v3`);
    expect(notices).toEqual([notice]);

    // A client that has not switched yet gets the 400 + notice on its first export and retries on B.
    const fresh = client();
    const started = await fresh.startResponseExport('SV_1', { format: 'json' });
    expect(started.progressId).toBe('ES_1');
    expect(a.seen.filter((s) => s.url.includes('export-responses'))).toHaveLength(1);
    expect(b.seen.filter((s) => s.url.includes('export-responses'))).toHaveLength(1);
  });

  it('never switches to a host outside qualtrics.com or loopback', async () => {
    a.handler = (_req, _url, _body, res) => ok(res, { brandId: 'acme' }, { notice: 'Request proxied. For faster response times, use this host instead: evil.example.com' });
    const c = client();
    await c.whoami();
    expect(c.baseUrl).toBe(`${a.base}/API/v3`);
  });

  it('builds the datacenter host and validates the id', () => {
    expect(new QualtricsClient({ apiToken: TOKEN, datacenter: 'iad1' }).baseUrl).toBe('https://iad1.qualtrics.com/API/v3');
    expect(() => new QualtricsClient({ apiToken: TOKEN, datacenter: 'evil.com/x?' })).toThrow(/not a datacenter id/);
    expect(qualtricsConfigFromEnv({ QUALTRICS_API_TOKEN: TOKEN, QUALTRICS_BASE_URL: 'http://127.0.0.1:1/' }).baseUrl).toBe('http://127.0.0.1:1/');
    expect(() => qualtricsConfigFromEnv({ QUALTRICS_API_TOKEN: TOKEN })).toThrow(/QUALTRICS_DATACENTER/);
  });
});

describe('response exports', () => {
  it('starts, polls, downloads, unzips and parses a JSON export', async () => {
    let polls = 0;
    const zip = zipSync({ 'Post purchase.json': strToU8(JSON.stringify({ responses: [{ responseId: 'R_1', values: { QID4: 2 } }] })) });
    a.handler = (req, url, _body, res) => {
      if (req.method === 'POST') ok(res, { progressId: 'ES_9', percentComplete: 0, status: 'inProgress' });
      else if (url.pathname.endsWith('/ES_9')) ok(res, ++polls < 3 ? { percentComplete: 50, status: 'inProgress' } : { percentComplete: 100, status: 'complete', fileId: 'F-1' });
      else {
        res.writeHead(200, { 'content-type': 'application/zip' });
        res.end(Buffer.from(zip));
      }
    };
    const result = await client().exportResponses('SV_1', { format: 'json' }, { pollIntervalMs: 10 });
    expect(result).toEqual({ format: 'json', fileName: 'Post purchase.json', responses: [{ responseId: 'R_1', values: { QID4: 2 } }] });
    expect(polls).toBe(3);
    expect(a.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /API/v3/surveys/SV_1/export-responses',
      'GET /API/v3/surveys/SV_1/export-responses/ES_9',
      'GET /API/v3/surveys/SV_1/export-responses/ES_9',
      'GET /API/v3/surveys/SV_1/export-responses/ES_9',
      'GET /API/v3/surveys/SV_1/export-responses/F-1/file',
    ]);
  });

  it('starts a new export once when one fails, and stops polling on 404', async () => {
    let starts = 0;
    a.handler = (req, url, _body, res) => {
      if (req.method === 'POST') ok(res, { progressId: `ES_${++starts}`, status: 'inProgress' });
      else if (url.pathname.endsWith('/ES_1')) ok(res, { fileId: null, percentComplete: 100, status: 'failed' });
      else if (url.pathname.endsWith('/ES_2')) fail(res, 404, 'gone', 'NF');
      else ok(res, {});
    };
    const err = (await client().exportResponses('SV_1', { format: 'json' }).catch((e: unknown) => e)) as ProviderError;
    expect(starts).toBe(2);
    expect(err.status).toBe(404);
  });

  it('parses Qualtrics CSV with ImportId header rows, plain CSV, and NDJSON', () => {
    const csv = [
      'StartDate,ResponseId,Q4',
      'Start Date,Response ID,How was it?',
      '"{""ImportId"":""startDate""}","{""ImportId"":""_recordId""}","{""ImportId"":""QID4""}"',
      '2024-01-01,R_1,2',
      '2024-01-02,R_2,"1, mostly"',
    ].join('\n');
    expect(parseResponseExport(strToU8(csv), 'csv')).toEqual({
      format: 'csv',
      rows: [
        { startDate: '2024-01-01', _recordId: 'R_1', QID4: '2' },
        { startDate: '2024-01-02', _recordId: 'R_2', QID4: '1, mostly' },
      ],
    });
    expect(parseResponseExport(zipSync({ 'a.tsv': strToU8('a\tb\n1\t2\n') }), 'tsv')).toEqual({ format: 'tsv', fileName: 'a.tsv', rows: [{ a: '1', b: '2' }] });
    const nd = `${JSON.stringify({ responseId: 'R_1', values: {} })}\n${JSON.stringify({ responseId: 'R_2', values: { x: 1 } })}\n`;
    expect(parseResponseExport(strToU8(nd), 'ndjson')).toMatchObject({ responses: [{ responseId: 'R_1' }, { responseId: 'R_2' }] });
    expect(() => parseResponseExport(strToU8('{"nope":1}'), 'json')).toThrow(/responses/);
  });
});
