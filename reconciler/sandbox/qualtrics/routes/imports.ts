/**
 * Bulk import of contacts (and their transactions) into a mailing list:
 * `POST …/mailinglists/{id}/transactioncontacts` answers 202 with an import id, the rows are processed in
 * the background over the job's steps, and `GET …/transactioncontacts/{importId}` (+ `/summary`) report
 * progress. Unlike "create contact in mailing list", import rows merge into existing directory contacts by
 * the directory's deduplication criteria (counted as `updated`).
 */
import { BodyReader, isEmail, parseJsonBody } from '../body.ts';
import { addMembership, createContact, findDuplicate, patchContact, readContactInput, setListUnsubscribed, type ContactInput } from '../contacts.ts';
import { param, type HandlerContext, type Route } from '../context.ts';
import { QualtricsApiError, invalidParam, notFound, ok, type ApiResult } from '../envelope.ts';
import { nextPageUrl, readPageRequest, takePage } from '../pagination.ts';
import type { SeededRandom } from '../random.ts';
import type { ImportContact, ImportJob, ImportReportEntry, QualtricsStore, Transaction, TransactionBatch } from '../state.ts';
import { requireMailingList } from './directory.ts';

const ROW_KEYS = ['transactionData'];

/** `YYYY-MM-DD HH:MM:SS` in UTC. */
export function transactionDateOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function toImportContact(input: ContactInput, transactionData: Record<string, string> | undefined): ImportContact {
  return {
    firstName: input.firstName ?? null,
    lastName: input.lastName ?? null,
    email: input.email ?? null,
    phone: input.phone ?? null,
    extRef: input.extRef ?? null,
    language: input.language ?? null,
    unsubscribed: input.unsubscribed ?? null,
    embeddedData: input.embeddedData ?? {},
    transactionData: transactionData ?? null,
  };
}

function fromImportContact(row: ImportContact): ContactInput {
  const input: ContactInput = { embeddedData: row.embeddedData };
  if (row.firstName !== null) input.firstName = row.firstName;
  if (row.lastName !== null) input.lastName = row.lastName;
  if (row.email !== null) input.email = row.email;
  if (row.phone !== null) input.phone = row.phone;
  if (row.extRef !== null) input.extRef = row.extRef;
  if (row.language !== null) input.language = row.language;
  if (row.unsubscribed !== null) input.unsubscribed = row.unsubscribed;
  return input;
}

function startImport(ctx: HandlerContext): ApiResult {
  const list = requireMailingList(ctx);
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(['transactionMeta', 'contacts']);
  const meta = body.optionalObject('transactionMeta');
  let batchId: string | null = null;
  let fields: string[] = [];
  if (meta) {
    meta.allowOnly(['batchId', 'fields']);
    batchId = meta.requiredString('batchId');
    if (!/^BT_\w+$/.test(batchId)) throw invalidParam('transactionMeta.batchId', 'expected a transaction batch id (BT_…)');
    const existing = ctx.store.batches.get(batchId);
    if (existing && existing.directoryId !== list.directoryId) {
      throw invalidParam('transactionMeta.batchId', 'the batch belongs to another directory');
    }
    fields = meta.optionalStringArray('fields') ?? [];
  }
  const rawContacts = body.requiredArray('contacts');
  if (rawContacts.length === 0) throw invalidParam('contacts', 'must not be empty');

  // Rows that cannot be read are reported back at once as unprocessed; the rest go to the job.
  // ⚠ The exact shape of an `unprocessed` entry is not documented; index plus message is our choice.
  const unprocessed: { index: number; errorMessage: string }[] = [];
  const rows: ImportContact[] = [];
  rawContacts.forEach((raw, index) => {
    try {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidParam(`contacts[${index}]`, 'expected an object');
      const reader = new BodyReader(raw as Record<string, unknown>, `contacts[${index}]`);
      // Malformed emails are not refused here: the job reports them (`invalidEmails`, failed count).
      const input = readContactInput(reader, { allowPrivate: false, extraKeys: ROW_KEYS, checkEmail: false });
      const transactionData = reader.optionalStringMap('transactionData');
      if (transactionData && meta) {
        // ⚠ Whether undeclared transaction fields are refused is not documented; refusing is the
        // reading under which a client that passes here also passes against the real API.
        const undeclared = Object.keys(transactionData).filter((k) => !fields.includes(k));
        if (undeclared.length > 0) {
          throw invalidParam(`contacts[${index}].transactionData`, `fields not declared in transactionMeta.fields: ${undeclared.join(', ')}`);
        }
      }
      rows.push(toImportContact(input, transactionData));
    } catch (err) {
      if (!(err instanceof QualtricsApiError)) throw err;
      unprocessed.push({ index, errorMessage: err.message });
    }
  });

  const rate = ctx.faults.partialFailureRate ?? 0;
  const faultedRows: number[] = [];
  if (rate > 0) rows.forEach((_, i) => ctx.rng.next() < rate && faultedRows.push(i));

  const job: ImportJob = {
    seq: ctx.store.nextSeq(),
    id: ctx.rng.id('PGR'),
    directoryId: list.directoryId,
    mailingListId: list.mailingListId,
    batchId,
    transactionFields: fields,
    createdAt: ctx.now().getTime(),
    stepsDone: 0,
    stepsTotal: ctx.store.config.jobSteps,
    status: 'inProgress',
    rows,
    cursor: 0,
    faultedRows,
    added: 0,
    updated: 0,
    failed: 0,
    transactionsCreated: 0,
    invalidEmails: [],
    report: [],
  };
  ctx.store.imports.set(job.id, job);
  const trackingPath = `/API/v3/directories/${job.directoryId}/mailinglists/${job.mailingListId}/transactioncontacts/${job.id}`;
  return ok(
    { id: job.id, contacts: { unprocessed }, tracking: { url: `${ctx.origin}${trackingPath}` }, status: job.status },
    202,
  );
}

function ensureBatch(store: QualtricsStore, job: ImportJob, nowMs: number): TransactionBatch | undefined {
  if (!job.batchId) return undefined;
  let batch = store.batches.get(job.batchId);
  if (!batch) {
    // ⚠ Transaction-batch endpoints' shapes are not documented; an import naming an unknown batch id
    // creates that batch, so distributions can then target it.
    batch = { seq: store.nextSeq(), id: job.batchId, directoryId: job.directoryId, creationDate: nowMs, transactionIds: [] };
    store.batches.set(batch.id, batch);
  }
  return batch;
}

function failRow(job: ImportJob, index: number, row: ImportContact, code: string): void {
  job.failed += 1;
  job.report.push(reportEntry(index, row, { importStatus: 'failed', importStatusCode: code }));
}

function reportEntry(index: number, row: ImportContact, parts: Partial<ImportReportEntry>): ImportReportEntry {
  return {
    sourceIndexId: index,
    email: row.email,
    phone: row.phone,
    contactId: null,
    importStatus: 'failed',
    importStatusCode: null,
    transactionId: null,
    transactionStatus: null,
    transactionStatusCode: null,
    contactListContactId: null,
    contactListContactStatus: null,
    contactListContactStatusCode: null,
    ...parts,
  };
}

function processRow(store: QualtricsStore, rng: SeededRandom, job: ImportJob, index: number, nowMs: number): void {
  const row = job.rows[index];
  if (!row) return;
  const directory = store.directories.get(job.directoryId);
  const list = store.mailingLists.get(job.mailingListId);
  if (!directory || !list) return failRow(job, index, row, 'LIST_NOT_FOUND');
  if (job.faultedRows.includes(index)) return failRow(job, index, row, 'INTERNAL_ERROR');
  if (row.email !== null && row.email !== '' && !isEmail(row.email)) {
    job.invalidEmails.push(row.email);
    return failRow(job, index, row, 'INVALID_EMAIL');
  }
  if (!row.email && !row.phone && !row.extRef) return failRow(job, index, row, 'MISSING_IDENTIFIER');

  const input = fromImportContact(row);
  let contact = findDuplicate(store, directory, input);
  let importStatus: string;
  if (contact) {
    patchContact(store, contact, input, nowMs);
    job.updated += 1;
    importStatus = 'updated';
  } else {
    contact = createContact(store, rng, nowMs, directory.directoryId, input);
    job.added += 1;
    importStatus = 'added';
  }
  let membership = store.membershipFor(list.mailingListId, contact.contactId);
  let listStatus = 'existing';
  if (!membership) {
    membership = addMembership(store, rng, nowMs, list, contact, input);
    listStatus = 'added';
  } else if (input.unsubscribed !== undefined) {
    setListUnsubscribed(membership, input.unsubscribed, nowMs);
  }
  let transactionId: string | null = null;
  if (row.transactionData) {
    const batch = ensureBatch(store, job, nowMs);
    const tx: Transaction = {
      seq: store.nextSeq(),
      id: rng.id('CTR'),
      directoryId: directory.directoryId,
      contactId: contact.contactId,
      mailingListId: list.mailingListId,
      batchId: batch?.id ?? null,
      transactionDate: transactionDateOf(nowMs),
      data: { ...row.transactionData },
    };
    store.transactions.set(tx.id, tx);
    batch?.transactionIds.push(tx.id);
    job.transactionsCreated += 1;
    transactionId = tx.id;
  }
  list.lastModifiedDate = nowMs;
  job.report.push(
    reportEntry(index, row, {
      contactId: contact.contactId,
      importStatus,
      transactionId,
      transactionStatus: transactionId ? 'created' : null,
      contactListContactId: membership.contactLookupId,
      contactListContactStatus: listStatus,
    }),
  );
}

/** One step of background work: processes the next share of rows; the last step finishes the job. */
export function advanceImport(store: QualtricsStore, rng: SeededRandom, job: ImportJob, nowMs: number): void {
  if (job.status !== 'inProgress') return;
  job.stepsDone = Math.min(job.stepsTotal, job.stepsDone + 1);
  const target = Math.ceil((job.rows.length * job.stepsDone) / job.stepsTotal);
  while (job.cursor < target) {
    processRow(store, rng, job, job.cursor, nowMs);
    job.cursor += 1;
  }
  if (job.stepsDone >= job.stepsTotal) job.status = 'complete';
}

function requireImport(ctx: HandlerContext): ImportJob {
  const list = requireMailingList(ctx);
  const id = param(ctx, 'importId');
  const job = ctx.store.imports.get(id);
  if (!job || job.mailingListId !== list.mailingListId) throw notFound('Import', id);
  return job;
}

function progressView(job: ImportJob): Record<string, unknown> {
  const percent = job.rows.length === 0 ? (job.status === 'complete' ? 100 : 0) : (job.cursor / job.rows.length) * 100;
  return {
    percentComplete: Math.round(percent * 10) / 10,
    contacts: { count: { added: job.added, updated: job.updated, failed: job.failed } },
    transactions: { count: { created: job.transactionsCreated } },
    status: job.status,
  };
}

function getImport(ctx: HandlerContext): ApiResult {
  return ok(progressView(requireImport(ctx)));
}

function getImportSummary(ctx: HandlerContext): ApiResult {
  const job = requireImport(ctx);
  return ok({ ...progressView(job), invalidEmails: [...job.invalidEmails] });
}

/**
 * The per-row report of a finished import (`GET /directories/{dId}/imports/api-import/jobs/{importId}/report`):
 * which rows became contacts and transactions, and which failed. ⚠ Paging and the envelope around the
 * entries are not documented; the sandbox pages them like other lists (`elements`, `nextPage`, 100 a page),
 * in source-index order.
 */
function getImportReport(ctx: HandlerContext): ApiResult {
  const id = param(ctx, 'importId');
  const job = ctx.store.imports.get(id);
  if (!job || job.directoryId !== param(ctx, 'directoryId')) throw notFound('Import', id);
  if (job.status !== 'complete') throw invalidParam('importId', 'the import has not finished');
  const entries = [...job.report].sort((a, b) => a.sourceIndexId - b.sourceIndexId).map((e) => ({ ...e, seq: e.sourceIndexId + 1 }));
  const req = readPageRequest(ctx.url, `report:${id}`, { defaultSize: 100, maxSize: 500, allowOffset: false });
  const page = takePage(entries, req);
  return ok({
    elements: page.items.map(({ seq: _seq, ...e }) => e),
    nextPage: nextPageUrl(ctx.url, `report:${id}`, page.nextAfterSeq),
  });
}

/**
 * `POST /directories/{dId}/transactionbatches/{batchId}/transactions` with `{ transactionIds: [...] }`:
 * adds existing transactions of the directory to a batch. ⚠ The endpoint is listed in Qualtrics' API
 * reference (transactionBatches.json) but its body shape was not retrieved: assumed here, and a batch is a
 * set (adding a transaction it holds changes nothing), which is what makes the call safe to repeat.
 */
function addBatchTransactions(ctx: HandlerContext): ApiResult {
  const directoryId = param(ctx, 'directoryId');
  if (!ctx.store.directories.has(directoryId)) throw notFound('directory', directoryId);
  const batchId = param(ctx, 'batchId');
  if (!/^BT_\w+$/.test(batchId)) throw invalidParam('batchId', 'expected a transaction batch id (BT_…)');
  const body = new BodyReader(parseJsonBody(ctx.req)).allowOnly(['transactionIds']);
  const ids = body.requiredArray('transactionIds');
  if (ids.length === 0 || ids.length > 10_000) throw invalidParam('transactionIds', 'give 1 to 10,000 transaction ids');
  const txIds = ids.map((id, i) => {
    const tx = typeof id === 'string' ? ctx.store.transactions.get(id) : undefined;
    if (!tx || tx.directoryId !== directoryId) throw invalidParam(`transactionIds[${i}]`, 'no such transaction in this directory');
    return tx.id;
  });
  let batch = ctx.store.batches.get(batchId);
  if (batch && batch.directoryId !== directoryId) throw invalidParam('batchId', 'the batch belongs to another directory');
  if (!batch) {
    batch = { seq: ctx.store.nextSeq(), id: batchId, directoryId, creationDate: ctx.now().getTime(), transactionIds: [] };
    ctx.store.batches.set(batchId, batch);
  }
  const held = new Set(batch.transactionIds);
  let added = 0;
  for (const id of txIds) {
    if (held.has(id)) continue;
    held.add(id);
    batch.transactionIds.push(id);
    added += 1;
  }
  return ok({ batchId, added });
}

export const importRoutes: Route[] = [
  { method: 'POST', pattern: '/directories/{directoryId}/transactionbatches/{batchId}/transactions', handler: addBatchTransactions },
  {
    method: 'GET',
    pattern: '/directories/{directoryId}/imports/api-import/jobs/{importId}/report',
    handler: getImportReport,
  },
  {
    method: 'POST',
    pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/transactioncontacts',
    handler: startImport,
  },
  {
    method: 'GET',
    pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/transactioncontacts/{importId}',
    handler: getImport,
  },
  {
    method: 'GET',
    pattern: '/directories/{directoryId}/mailinglists/{mailingListId}/transactioncontacts/{importId}/summary',
    handler: getImportSummary,
  },
];
