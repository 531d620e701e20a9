/**
 * Webhook verification (pure) and the Node handler around it: good deliveries, every refusal, the body
 * bound enforced while reading, duplicates answered 2xx, and outcomes that carry no ids.
 */
import { request, type IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { handleQualtricsWebhook, type WebhookOutcome, type WebhookSink } from '../../reconciler/responses/webhook-http.ts';
import {
  parseCompletedDate,
  signWebhookMessage,
  verifyWebhook,
  WEBHOOK_MAX_BODY_BYTES,
  type WebhookDelivery,
} from '../../reconciler/responses/webhook.ts';

const KEY = 'test-shared-key-5b1d0c9e7a';
const BRAND = 'hearthandharvest';
const SURVEY = 'SV_postPurchase01';
const NOW = new Date('2026-12-02T09:00:00Z');
const FORM = 'application/x-www-form-urlencoded';

function msgOf(over: Record<string, unknown> = {}): string {
  return JSON.stringify({ Status: 'Complete', SurveyID: SURVEY, ResponseID: 'R_abc123', CompletedDate: '2026-12-02 08:30:00', BrandID: BRAND, ...over });
}

/** A delivery as Qualtrics makes it: Topic, MSG, HMAC of MSG, form-encoded. */
function body(o: { msg?: string; hmac?: string; topic?: string; key?: string; drop?: string[] } = {}): string {
  const msg = o.msg ?? msgOf();
  const form = new URLSearchParams();
  form.set('Topic', o.topic ?? `${BRAND}.surveyengine.completedResponse.${SURVEY}`);
  form.set('MSG', msg);
  form.set('HMAC', o.hmac ?? signWebhookMessage(msg, o.key ?? KEY));
  for (const d of o.drop ?? []) form.delete(d);
  return form.toString();
}

const opts = { sharedKey: KEY, surveys: new Set([SURVEY]), now: NOW };
const verify = (b: string, contentType: string | undefined = FORM) => verifyWebhook({ contentType, body: b }, opts);

describe('verifyWebhook', () => {
  it('accepts a signed delivery and returns its ids', () => {
    const v = verify(body());
    expect(v).toEqual({ ok: true, delivery: { surveyId: SURVEY, responseId: 'R_abc123', brandId: BRAND, completedAt: '2026-12-02T08:30:00.000Z' } });
    expect(verifyWebhook({ contentType: `${FORM}; charset=UTF-8`, body: Buffer.from(body()) }, opts).ok).toBe(true);
  });

  it('refuses a bad signature, a tampered MSG, a wrong key and a missing HMAC', () => {
    const bad = verify(body({ hmac: 'ab'.repeat(64) }));
    expect(bad).toMatchObject({ ok: false, reason: 'bad_signature', status: 401 });
    expect(verify(body({ hmac: 'not-hex' }))).toMatchObject({ ok: false, reason: 'bad_signature' });
    // MSG changed after signing: the ResponseID of someone else's answer.
    const signed = signWebhookMessage(msgOf(), KEY);
    expect(verify(body({ msg: msgOf({ ResponseID: 'R_other9' }), hmac: signed }))).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verify(body({ key: 'another-key-entirely' }))).toMatchObject({ ok: false, reason: 'bad_signature' });
    expect(verify(body({ drop: ['HMAC'] }))).toMatchObject({ ok: false, reason: 'missing_fields', status: 400, message: 'missing HMAC' });
  });

  it('refuses the unsigned flat shape Qualtrics sends without a shared key', () => {
    const flat = new URLSearchParams({ Topic: `${BRAND}.surveyengine.completedResponse.${SURVEY}`, Status: 'Complete', SurveyID: SURVEY, ResponseID: 'R_abc123', CompletedDate: '2026-12-02 08:30:00', BrandID: BRAND });
    expect(verify(flat.toString())).toMatchObject({ ok: false, reason: 'missing_fields', message: 'missing MSG, HMAC' });
  });

  it('refuses missing or malformed fields inside a well-signed MSG', () => {
    const noResponse = JSON.stringify({ Status: 'Complete', SurveyID: SURVEY, CompletedDate: '2026-12-02 08:30:00', BrandID: BRAND });
    expect(verify(body({ msg: noResponse }))).toMatchObject({ ok: false, reason: 'missing_fields', message: 'MSG has no ResponseID' });
    expect(verify(body({ msg: 'not json' }))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verify(body({ msg: msgOf({ ResponseID: 'R_x"; DROP' }) }))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verify(body({ msg: msgOf({ CompletedDate: 'yesterday' }) }))).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verify(`${body()}&HMAC=${'0'.repeat(128)}`)).toMatchObject({ ok: false, reason: 'malformed', message: 'HMAC appears more than once' });
  });

  it('refuses a Topic, SurveyID and BrandID that do not agree, and a status other than Complete', () => {
    expect(verify(body({ topic: `otherbrand.surveyengine.completedResponse.${SURVEY}` }))).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verify(body({ topic: `${BRAND}.surveyengine.completedResponse.SV_other` }))).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verify(body({ msg: msgOf({ Status: 'Partial' }) }))).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('refuses a survey no target of the environment names, even signed', () => {
    const msg = msgOf({ SurveyID: 'SV_notOurs' });
    expect(verify(body({ msg, topic: `${BRAND}.surveyengine.completedResponse.SV_notOurs` }))).toMatchObject({ ok: false, reason: 'unknown_survey', status: 422 });
  });

  it('refuses a delivery outside the replay window, at the injected clock', () => {
    expect(verify(body({ msg: msgOf({ CompletedDate: '2026-12-01 09:00:00' }) })).ok).toBe(true); // exactly 24 h
    expect(verify(body({ msg: msgOf({ CompletedDate: '2026-12-01 08:59:59' }) }))).toMatchObject({ ok: false, reason: 'stale', status: 410 });
    expect(verify(body({ msg: msgOf({ CompletedDate: '2026-12-02 09:10:00' }) }))).toMatchObject({ ok: false, reason: 'stale', message: 'CompletedDate is in the future' });
    expect(verifyWebhook({ contentType: FORM, body: body() }, { ...opts, now: new Date('2026-12-05T00:00:00Z') })).toMatchObject({ reason: 'stale' });
  });

  it('refuses the wrong content type and an oversized body', () => {
    expect(verify(body(), 'application/json')).toMatchObject({ ok: false, reason: 'unsupported_media_type', status: 415 });
    expect(verifyWebhook({ contentType: undefined, body: body() }, opts)).toMatchObject({ reason: 'unsupported_media_type' });
    expect(verify(`${body()}&pad=${'x'.repeat(WEBHOOK_MAX_BODY_BYTES)}`)).toMatchObject({ ok: false, reason: 'too_large', status: 413 });
  });

  it('never puts a field value in its message', () => {
    for (const b of [body({ hmac: 'ab'.repeat(64) }), body({ msg: msgOf({ SurveyID: 'SV_notOurs' }), topic: `${BRAND}.surveyengine.completedResponse.SV_notOurs` })]) {
      const v = verify(b);
      expect(v.ok).toBe(false);
      if (!v.ok) expect(v.message).not.toMatch(/R_abc123|SV_notOurs|hearthandharvest/);
    }
  });

  it('reads Qualtrics dates as UTC and ISO times with their zone', () => {
    expect(parseCompletedDate('2019-06-26 13:28:11')).toBe(Date.parse('2019-06-26T13:28:11Z'));
    expect(parseCompletedDate('2019-06-26T13:28:11+02:00')).toBe(Date.parse('2019-06-26T11:28:11Z'));
    expect(parseCompletedDate('2019-06-26T13:28:11+0200')).toBe(Date.parse('2019-06-26T11:28:11Z'));
    expect(parseCompletedDate('26/06/2019')).toBeUndefined();
  });
});

/** A sink that remembers response ids, as the ledger does. */
function memorySink(): WebhookSink & { received: WebhookDelivery[] } {
  const seen = new Set<string>();
  const received: WebhookDelivery[] = [];
  return {
    received,
    async receive(d) {
      if (seen.has(d.responseId)) return 'duplicate';
      seen.add(d.responseId);
      received.push(d);
      return 'new';
    },
  };
}

describe('handleQualtricsWebhook', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
  });

  async function serve(sink: WebhookSink, outcomes: WebhookOutcome[], extra: { sinkTimeoutMs?: number } = {}) {
    server = createServer((req, res) => void handleQualtricsWebhook(req, res, { sharedKey: KEY, surveys: new Set([SURVEY]), clock: fixedClock(NOW.toISOString()), sink, onOutcome: (o) => outcomes.push(o), ...extra }));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  }

  const post = (url: string, b: string, contentType = FORM) => fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: b });

  it('hands a good delivery to the sink once; the same body again is a 200 duplicate, never written twice', async () => {
    const sink = memorySink();
    const outcomes: WebhookOutcome[] = [];
    const url = await serve(sink, outcomes);
    const first = await post(url, body());
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ outcome: 'accepted' });
    const again = await post(url, body());
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ outcome: 'duplicate' });
    expect(sink.received).toHaveLength(1);
    expect(outcomes.map((o) => [o.status, o.outcome])).toEqual([[200, 'accepted'], [200, 'duplicate']]);
    expect(JSON.stringify(outcomes)).not.toMatch(/R_abc123|SV_/);
  });

  it('answers refusals with their status and reason, and the sink never sees them', async () => {
    const sink = memorySink();
    const outcomes: WebhookOutcome[] = [];
    const url = await serve(sink, outcomes);
    const cases: Array<[Promise<Response>, number, string]> = [
      [post(url, body({ hmac: 'ab'.repeat(64) })), 401, 'bad_signature'],
      [post(url, body({ key: 'wrong-key-0000' })), 401, 'bad_signature'],
      [post(url, body({ drop: ['HMAC'] })), 400, 'missing_fields'],
      [post(url, body({ msg: msgOf({ CompletedDate: '2026-11-20 08:00:00' }) })), 410, 'stale'],
      [post(url, body(), 'application/json'), 415, 'unsupported_media_type'],
      [fetch(url), 405, 'method_not_allowed'],
    ];
    for (const [p, status, reason] of cases) {
      const r = await p;
      expect([r.status, ((await r.json()) as { reason: string }).reason]).toEqual([status, reason]);
    }
    expect(sink.received).toHaveLength(0);
  });

  it('refuses a body over the bound while reading it: by its Content-Length at once, chunked as soon as it passes', async () => {
    const sink = memorySink();
    const outcomes: WebhookOutcome[] = [];
    const url = new URL(await serve(sink, outcomes));
    const big = await post(url.toString(), `${body()}&pad=${'x'.repeat(WEBHOOK_MAX_BODY_BYTES)}`);
    expect(big.status).toBe(413);
    expect(outcomes[0]).toMatchObject({ status: 413, reason: 'too_large', bytes: 0 });

    // Chunked, no length: the handler stops reading after the bound; 4 MiB are offered, far fewer read.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': FORM } }, (res: IncomingMessage) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (err) => (outcomes.length > 1 ? resolve(-1) : reject(err)));
      const chunk = Buffer.alloc(16 * 1024, 'x');
      let sent = 0;
      const pump = () => {
        while (sent < 256) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect([413, -1]).toContain(status);
    expect(outcomes[1]).toMatchObject({ status: 413, outcome: 'refused', reason: 'too_large' });
    expect(outcomes[1]!.bytes).toBeLessThan(4 * 1024 * 1024);
    expect(sink.received).toHaveLength(0);
  });

  it('answers 503 when the sink fails or is too slow, so Qualtrics retries', async () => {
    const outcomes: WebhookOutcome[] = [];
    const url = await serve({ receive: async () => { throw new Error('ledger down'); } }, outcomes);
    const r = await post(url, body());
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ outcome: 'failed', reason: 'sink_failed' });
    await new Promise((res) => server!.close(res));
    server = undefined;
    const slow = await serve({ receive: () => new Promise(() => undefined) }, outcomes, { sinkTimeoutMs: 20 });
    expect((await post(slow, body())).status).toBe(503);
    expect(outcomes.map((o) => o.reason)).toEqual(['sink_failed', 'sink_timeout']);
  });
});
