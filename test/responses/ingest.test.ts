/**
 * Ingestion on both state backends, with a Customer.io client that acknowledges what the test says: the
 * ledger keeps each response once, writes only what was acknowledged, retries the rest, and leaves the
 * written reason codes where the audience mirror reads them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchSummary, V2Entry } from '../../reconciler/providers/customerio/types.ts';
import { ingestOne, ingestResponses, writeResponses, type ResponseTarget } from '../../reconciler/responses/ingest.ts';
import { responseAttributeSource, responseEventSource } from '../../reconciler/spec/rules/writers.ts';
import type { StateStore } from '../../reconciler/state/types.ts';
import { stateBackends, testClock } from '../support/state-backends.ts';

const HOUR = 3_600_000;
const backends = await stateBackends('responses');

const target: ResponseTarget = {
  name: 'cancel_intent_reason',
  survey: 'SV_cancel',
  mapping: { question: 'QID2', reason_codes: { '1': 'price', '2': 'taste' }, write: { attribute: 'cancel_reason', event: 'survey_answered' } },
  windowMs: 48 * HOUR,
};

/** A client that acknowledges every entry except those `refuse` picks, and keeps what it acknowledged. */
function fakeClient() {
  const sent: V2Entry[] = [];
  let refuse: (e: V2Entry) => boolean = () => false;
  return {
    sent,
    refuseWhen(f: (e: V2Entry) => boolean) {
      refuse = f;
    },
    async sendBatches(entries: readonly V2Entry[]): Promise<BatchSummary> {
      const results = entries.map((e, index) => (refuse(e) ? { index, ok: false, reason: 'unknown_outcome', retryable: true } : { index, ok: true }));
      for (const [i, e] of entries.entries()) if (results[i]!.ok) sent.push(e);
      return { results, batches: 1, accepted: results.filter((r) => r.ok).length, rejected: results.filter((r) => !r.ok).length };
    },
  };
}

const record = (id: string, person: string | null, recorded: string, answer?: unknown) => ({
  responseId: id,
  values: { recordedDate: recorded, ...(person !== null ? { externalDataReference: person } : {}), ...(answer !== undefined ? { QID2: answer } : {}) },
});

for (const b of backends) {
  describe.skipIf(!b.available)(`response ingestion on ${b.name}`, () => {
    let store: StateStore;
    const clock = testClock('2027-01-10T09:00:00.000Z');
    beforeAll(async () => {
      store = await b.open(await b.newLocation(), { clock });
      await store.surveys.recordInvitations(target.name, ['c1', 'c2', 'c3', 'c4'], { heldOut: false });
      await store.surveys.recordInvitations(target.name, ['h1'], { heldOut: true });
      clock.advance(24 * HOUR);
    });
    afterAll(async () => {
      await store?.close();
      await b.cleanup();
    });

    it('writes mapped responses once, counts the others, and never writes unknown, late, unmapped or unanswered ones', async () => {
      const client = fakeClient();
      const deps = { store: store.responses, client };
      const records = [
        record('R_1', 'c1', '2027-01-10T12:00:00Z', 1),
        record('R_2', 'c2', '2027-01-10T13:00:00Z', 2),
        record('R_3', 'stranger', '2027-01-10T13:00:00Z', 1),
        record('R_4', 'h1', '2027-01-10T13:00:00Z', 1), // held out: never invited
        record('R_5', null, '2027-01-10T13:00:00Z', 1),
        record('R_6', 'c3', '2027-01-12T09:00:01Z', 1), // 48h + 1s after the invitation
        record('R_7', 'c4', '2027-01-10T14:00:00Z', 9),
        record('R_8', 'c4', '2027-01-10T15:00:00Z'),
        record('R_1', 'c1', '2027-01-10T12:00:00Z', 1), // the same response twice in one export
      ];
      const r = await ingestResponses(deps, target, records, 'pull');
      expect(r.counts.get(target.name)).toEqual({ target: target.name, fetched: 9, written: 2, duplicate: 1, unknown_person: 3, late: 1, unmapped: 1, no_answer: 1, not_written: 0, retried: 0 });
      expect(client.sent.filter((e) => e.action === 'identify').map((e) => [e.identifiers, e['attributes']])).toEqual([
        [{ id: 'c1' }, { cancel_reason: 'price' }],
        [{ id: 'c2' }, { cancel_reason: 'taste' }],
      ]);
      const event = client.sent.find((e) => e.action === 'event')!;
      expect(event).toMatchObject({ name: 'survey_answered', identifiers: { id: 'c1' }, timestamp: Date.parse('2027-01-10T12:00:00Z') / 1000, attributes: { reason_code: 'price', survey: 'SV_cancel', target: target.name, answered_at: '2027-01-10T12:00:00.000Z' } });

      // Again, by webhook this time: every one is a duplicate, nothing is sent.
      const again = await ingestResponses(deps, target, records.slice(0, 2), 'webhook');
      expect(again.counts.get(target.name)).toMatchObject({ fetched: 2, written: 0, duplicate: 2 });
      expect(client.sent).toHaveLength(4);
      expect(await store.responses.count(target.name)).toEqual({ pending: 0, written: 2, unknown_person: 3, late: 1, unmapped: 1, no_answer: 1 });
      expect(await store.responses.get('SV_cancel', 'R_1')).toMatchObject({ outcome: 'written', via: 'pull', person_id: 'c1', answer: '1', reason_code: 'price' });
    });

    it('keeps what Customer.io did not acknowledge pending and writes it on the retry; the mirror sees only acknowledged codes', async () => {
      const client = fakeClient();
      const deps = { store: store.responses, client };
      client.refuseWhen((e) => e.action === 'event');
      const r = await ingestResponses(deps, target, [record('R_10', 'c3', '2027-01-10T20:00:00Z', 2)], 'pull');
      expect(r.counts.get(target.name)).toMatchObject({ written: 0, not_written: 1 });
      expect((await store.responses.pending()).map((p) => p.response_id)).toEqual(['R_10']);
      expect(await store.getSnapshotEntry(responseAttributeSource(target.name), 'c3')).toBeUndefined();

      client.refuseWhen(() => false);
      const retried = await writeResponses(deps, [target], await store.responses.pending());
      expect(retried.written.map((w) => w.response_id)).toEqual(['R_10']);
      expect(await store.responses.pending()).toEqual([]);
      expect(JSON.parse((await store.getSnapshotEntry(responseAttributeSource(target.name), 'c3'))!.payload!)).toEqual({ records: 'person', attributes: { cancel_reason: 'taste' } });
      expect(await store.getSnapshotEntry(responseEventSource(target.name), 'R_10')).toBeDefined();
      // The same event twice carries the same id: Customer.io deduplicates the resend.
      const ids = client.sent.filter((e) => e.action === 'event').map((e) => e.id);
      expect(ids).toHaveLength(1);
    });

    it('leaves a pending response of a target no longer declared pending, never marked written unwritten', async () => {
      const client = fakeClient();
      const deps = { store: store.responses, client };
      client.refuseWhen(() => true);
      await ingestResponses(deps, target, [record('R_40', 'c1', '2027-01-11T01:00:00Z', 1)], 'pull');
      client.refuseWhen(() => false);
      const other = { ...target, name: 'another_target' };
      expect(await writeResponses(deps, [other], await store.responses.pending())).toEqual({ written: [], notWritten: [], reasons: [] });
      expect(client.sent).toEqual([]);
      expect((await store.responses.pending()).map((p) => p.response_id)).toEqual(['R_40']);
      expect((await writeResponses(deps, [target], await store.responses.pending())).written).toHaveLength(1);
    });

    it('does not let an older answer overwrite a newer one in the attribute', async () => {
      const client = fakeClient();
      const deps = { store: store.responses, client };
      await ingestResponses(deps, target, [record('R_21', 'c2', '2027-01-10T22:00:00Z', 1)], 'webhook');
      await ingestResponses(deps, target, [record('R_20', 'c2', '2027-01-10T21:00:00Z', 2)], 'pull');
      expect(client.sent.filter((e) => e.action === 'identify').map((e) => e['attributes'])).toEqual([{ cancel_reason: 'price' }]);
      expect(client.sent.filter((e) => e.action === 'event')).toHaveLength(2);
      expect(JSON.parse((await store.getSnapshotEntry(responseAttributeSource(target.name), 'c2'))!.payload!).attributes).toEqual({ cancel_reason: 'price' });
    });

    it('ingestOne fetches one response, and a second delivery of it is a duplicate', async () => {
      const client = fakeClient();
      let fetched = 0;
      const qualtrics = {
        async getResponse(_s: string, id: string) {
          fetched += 1;
          return id === 'R_30' ? record('R_30', 'c4', '2027-01-10T23:00:00Z', 1) : undefined;
        },
      };
      const deps = { store: store.responses, client, qualtrics, targets: [target] };
      expect((await ingestOne(deps, 'SV_cancel', 'R_30', 'webhook'))?.counts.get(target.name)).toMatchObject({ written: 1 });
      expect((await ingestOne(deps, 'SV_cancel', 'R_30', 'webhook'))?.counts.get(target.name)).toMatchObject({ written: 0, duplicate: 1 });
      expect(fetched).toBe(1);
      expect(await ingestOne(deps, 'SV_cancel', 'R_nope', 'webhook')).toBeUndefined();
      expect(await ingestOne(deps, 'SV_other', 'R_30', 'webhook')).toBeUndefined();
    });

    it('moves the cursor forward only', async () => {
      expect(await store.responses.cursor('SV_cancel')).toBeUndefined();
      await store.responses.advanceCursor('SV_cancel', '2027-01-10T12:00:00.000Z');
      await store.responses.advanceCursor('SV_cancel', '2027-01-10T11:00:00.000Z');
      expect(await store.responses.cursor('SV_cancel')).toBe('2027-01-10T12:00:00.000Z');
    });
  });
}
