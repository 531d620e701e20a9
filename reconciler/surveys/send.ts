/**
 * One survey send, driven through its journal (state/survey-sends.ts) so that a run killed at any point
 * and run again invites nobody twice and loses nobody:
 *
 *   staged ──import contacts (bulk, polled, per-row report)──▶ imported ──one distribution──▶ distributed
 *          ──record invitations and holdout decisions (one transaction)──▶ recorded
 *
 * - The members were frozen when the send was staged; a resumed send never re-decides who is in it.
 * - Each import request is journaled as soon as Qualtrics accepted it; a resumed send polls it instead of
 *   importing again.
 * - A chunk is imported into a batch of its own (`chunkBatchId`), and only the transactions of the
 *   journaled import's per-row report are then added to the send's batch, the one the distribution goes
 *   to. A kill in the instant between Qualtrics accepting an import and the journal write makes the
 *   resumed send import that chunk again; the lost import's transactions stay in the chunk batch, which no
 *   distribution names, so nobody is in the send's batch twice and nobody is invited twice.
 * - The distribution goes to the send's own transaction batch, so only this run's contacts get it, never
 *   the mailing list's earlier ones. Before creating it, a resumed send looks for a distribution already
 *   made for that batch (the create is not idempotent; its answer may have been lost).
 * - Invitations are recorded only for rows the import's per-row report shows as a contact with a
 *   transaction in the batch; failed rows are counted, never recorded as invited.
 */
import { ProviderError } from '../providers/errors.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import type { TransactionContactInput } from '../providers/qualtrics/types.ts';
import type { SurveySendJournal } from '../state/index.ts';
import type { SurveySend } from '../state/survey-sends.ts';
import type { SurveyTargetSpec } from '../spec/schema/index.ts';
import { SEND_TRANSACTION_FIELD, invitationContact, sendableEmail, type PayloadField } from './payload.ts';

/** Contacts per import request. Qualtrics documents no maximum; 5,000 keeps a request near 2 MB. */
export const IMPORT_CHUNK = 5000;

export interface SendDeps {
  journal: SurveySendJournal;
  qualtrics: QualtricsClient;
  /** The target's declared distribution (sender, subject, library message). */
  distribution: NonNullable<SurveyTargetSpec['distribution']>;
  payload: readonly PayloadField[];
  emailField: string;
  now: () => Date;
  importChunk?: number;
  pollIntervalMs?: number;
  /** Called between steps; the crash tests kill the process here. */
  onStep?: (step: string) => void | Promise<void>;
}

export interface SendOutcome {
  send_id: string;
  target: string;
  phase: SurveySend['phase'];
  /** Members (eligible when staged) not held out. */
  to_invite: number;
  invited: number;
  held_out: number;
  /** Rows Qualtrics' import report shows as failed. */
  failed: number;
  /** Members with no email address Qualtrics could send to (never imported). */
  no_email: number;
  distribution_id: string | null;
  /** Why the send stopped short (abandoned), in words without customer data. */
  note?: string;
}

export async function advanceSend(initial: SurveySend, deps: SendDeps): Promise<SendOutcome> {
  const { journal } = deps;
  let send = initial;
  const step = async (name: string) => {
    if (deps.onStep) await deps.onStep(name);
  };
  if (send.phase === 'staged') {
    if (deps.now().getTime() >= Date.parse(send.expires_at)) return abandon(send, deps, 'resumed after its response window had closed: nobody was sent it; its people are evaluated again next run');
    await importAll(send, deps, step);
    await journal.setPhase(send.send_id, 'imported');
    send = { ...send, phase: 'imported' };
    await step('imported');
  }
  if (send.phase === 'imported') {
    const counts = await journal.counts(send.send_id);
    let distributionId: string | null = null;
    if (counts.imported > 0) {
      distributionId = (await findDistribution(send, deps)) ?? null;
      if (!distributionId) {
        const now = deps.now();
        if (now.getTime() >= Date.parse(send.expires_at)) return abandon(send, deps, 'resumed after its response window had closed: no distribution was created; its people are evaluated again next run');
        await step('before-distribution');
        const sendAt = Math.max(now.getTime(), Date.parse(send.send_at));
        const d = deps.distribution;
        let created: { id: string };
        try {
          created = await deps.qualtrics.createDistribution({
          message: { libraryId: d.library_id, messageId: d.message_id },
          recipients: { transactionBatchId: send.batch_id },
          header: { fromName: d.from_name, fromEmail: d.from_email, subject: d.subject, ...(d.reply_to ? { replyToEmail: d.reply_to } : {}) },
          surveyLink: { surveyId: send.survey_id, expirationDate: isoSeconds(Date.parse(send.expires_at)), type: 'Individual' },
          sendDate: isoSeconds(sendAt),
          });
        } catch (err) {
          // Qualtrics refuses a distribution none of whose contacts it would email (all opted out since
          // eligibility was read). Asking again cannot change that: abandon, record nobody; the next run
          // reads them as opted out.
          if (noRecipients(err)) return abandon(send, deps, `Qualtrics refused the distribution: none of its ${counts.imported} contacts can be emailed (opted out or unreachable since eligibility was evaluated); nobody was recorded as invited`);
          throw err;
        }
        distributionId = created.id;
        await step('distribution-created');
      }
    }
    await journal.setPhase(send.send_id, 'distributed', distributionId ? { distribution_id: distributionId } : {});
    send = { ...send, phase: 'distributed', distribution_id: distributionId };
    await step('distributed');
  }
  if (send.phase === 'distributed') {
    await journal.record(send);
    send = { ...send, phase: 'recorded' };
    await step('recorded');
  }
  return outcome(send, deps);
}

async function outcome(send: SurveySend, deps: SendDeps, note?: string): Promise<SendOutcome> {
  const c = await deps.journal.counts(send.send_id);
  return {
    send_id: send.send_id,
    target: send.target,
    phase: send.phase,
    to_invite: c.members - c.held_out,
    invited: c.imported,
    held_out: c.held_out,
    failed: c.failed,
    no_email: c.skipped,
    distribution_id: send.distribution_id,
    ...(note ? { note } : {}),
  };
}

async function abandon(send: SurveySend, deps: SendDeps, note: string): Promise<SendOutcome> {
  await deps.journal.setPhase(send.send_id, 'abandoned', { note });
  return outcome({ ...send, phase: 'abandoned' }, deps, note);
}

/** Imports the send's contacts in chunks, resuming from the journal. */
async function importAll(send: SurveySend, deps: SendDeps, step: (name: string) => Promise<void>): Promise<void> {
  const { journal } = deps;
  const range = await journal.importRange(send.send_id);
  if (!range) return;
  const chunk = deps.importChunk ?? IMPORT_CHUNK;
  const done = new Map((await journal.imports(send.send_id)).map((i) => [i.first_seq, i]));
  for (let first = range.first; first <= range.last; first += chunk) {
    const last = Math.min(range.last, first + chunk - 1);
    let started = done.get(first);
    if (started?.status === 'complete') continue;
    const members = await journal.members(send.send_id, first, last);
    if (!started) {
      // Members without an address Qualtrics can send to are settled before the import, so the rows of
      // the request are a pure function of the journal (a resumed send maps the report back the same way).
      const values = await journal.payloadValues(
        members.filter((m) => m.outcome === null).map((m) => m.person_id),
        [...new Set([deps.emailField, ...deps.payload.map((f) => f.name)])],
      );
      const rows: Array<{ seq: number; contact: TransactionContactInput }> = [];
      const unsendable: number[] = [];
      for (const m of members) {
        if (m.outcome !== null) continue;
        const v = values.get(m.person_id);
        const email = v?.get(deps.emailField)?.value;
        if (!sendableEmail(email)) unsendable.push(m.seq);
        else rows.push({ seq: m.seq, contact: invitationContact(m.person_id, email, send.send_id, deps.payload, v) });
      }
      if (unsendable.length) await journal.markSkipped(send.send_id, unsendable);
      if (rows.length === 0) {
        await journal.importOutcome(send.send_id, first, last, []);
        continue;
      }
      const res = await deps.qualtrics.importTransactionContacts(send.directory_id, send.mailing_list_id, {
        transactionMeta: { batchId: chunkBatchId(send.batch_id, first), fields: [SEND_TRANSACTION_FIELD] },
        contacts: rows.map((r) => r.contact),
      });
      await journal.importStarted(send.send_id, first, last, res.id);
      started = { first_seq: first, last_seq: last, import_id: res.id, status: 'started' };
      await step('import-started');
    }
    await deps.qualtrics.waitForTransactionContactsImport(send.directory_id, send.mailing_list_id, started.import_id, { pollIntervalMs: deps.pollIntervalMs ?? 1000 });
    // The rows of the request, in request order: the members of the range still undecided.
    const sent = (await journal.members(send.send_id, first, last)).filter((m) => m.outcome === null);
    const failed: number[] = [];
    const seen = new Set<number>();
    const transactions: string[] = [];
    for await (const e of deps.qualtrics.importReport(send.directory_id, started.import_id)) {
      const m = sent[e.sourceIndexId];
      if (!m || seen.has(e.sourceIndexId)) continue;
      seen.add(e.sourceIndexId);
      const ok = (e.importStatus ?? '').toLowerCase() !== 'failed' && !!e.transactionId;
      if (ok) transactions.push(e.transactionId!);
      else failed.push(m.seq);
    }
    // A row the report does not mention did not reach the batch: never recorded as invited.
    sent.forEach((m, i) => !seen.has(i) && failed.push(m.seq));
    // Repeating this after a kill is harmless: a batch holds a transaction once.
    await deps.qualtrics.addTransactionsToBatch(send.directory_id, send.batch_id, transactions);
    await journal.importOutcome(send.send_id, first, last, failed);
    await step('import-complete');
  }
}

/**
 * The batch one chunk's import goes to: derived, so every attempt at that chunk names the same one, and
 * never the send's own batch, which holds only the transactions of journaled imports.
 */
export function chunkBatchId(sendBatchId: string, firstSeq: number): string {
  return `${sendBatchId}_c${firstSeq}`;
}

/** A distribution already created for this send's batch (a create whose answer was lost). */
async function findDistribution(send: SurveySend, deps: SendDeps): Promise<string | undefined> {
  if (send.distribution_id) return send.distribution_id;
  // A failed lookup throws: not knowing is not "none", and creating another would email everyone twice.
  for await (const d of deps.qualtrics.listDistributions(send.survey_id, { sendStartDate: isoSeconds(Date.parse(send.planned_at) - 86_400_000) })) {
    const r = d.recipients as { transactionBatchId?: unknown } | null | undefined;
    if (r && r.transactionBatchId === send.batch_id) return d.id;
  }
  return undefined;
}

/** Qualtrics' 400 for a distribution with no one to send to (no status code of its own is documented). */
function noRecipients(err: unknown): boolean {
  if (!(err instanceof ProviderError) || err.status !== 400) return false;
  return err.code === 'CP_TD_GER_NP' || /no recipients/i.test(err.reason);
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
