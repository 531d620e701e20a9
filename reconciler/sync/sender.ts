/**
 * Hands prepared entries to Customer.io and records what became of each one, for any engine that diffs
 * in memory and advances a snapshot through an ack session: the sync engine today, audience publishing
 * and survey exports next.
 *
 * Why nothing is lost and nothing is sent twice: every chunk's outcome (acknowledged, refused for good,
 * refused for a transient reason, unknown) is recorded in one transaction before the next chunk's, an
 * entry whose outcome is unknown stops sending and is kept as pending, and the pending entries of the
 * keys a chunk settled are deleted in that same transaction (see the state's SnapshotAckSession).
 */
import { redact } from '../core/redact.ts';
import type { CustomerioClient } from '../providers/customerio/client.ts';
import { serialiseEntry, type SerialisedEntry } from '../providers/customerio/v2-batch.ts';
import type { PendingEntry, SnapshotAckSession, AckedRow } from '../state/index.ts';
import type { RowPrint } from './record-prints.ts';
import { toTrackEntry, type EntryOptions } from './entries.ts';
import { readPayload, type PreparedRow } from './prepare.ts';
import type { PendingBook } from './run-diff.ts';

/** What a Sender counts; the sync report carries these counts as they are. */
export interface SendCounts {
  /** Entries Customer.io acknowledged (the same as `acknowledged`): "sent" never counts an attempt. */
  sent: number;
  acknowledged: number;
  /** Entries handed to Customer.io in a request, whatever the answer. */
  attempted: number;
  /** Entries Customer.io refused for good (207); their rows are in the rejects file. */
  refused: number;
  /** Entries Customer.io refused for a transient reason (207): kept in the state, sent on the next run. */
  retry_later: number;
  /** Entries earlier runs left waiting that this run sent (a plan: would send). */
  retried: number;
}

/** Where the entries Customer.io refused for good are written down, one record each. */
export interface RejectSink {
  write(record: Record<string, unknown>): void;
}

export interface SenderOptions {
  client: Pick<CustomerioClient, 'sendSerialised'>;
  acks: SnapshotAckSession;
  /** Updated as outcomes are recorded. */
  counts: SendCounts;
  rejects: RejectSink;
  book: PendingBook;
  entryOptions: EntryOptions;
  signal?: AbortSignal | undefined;
  /** Entries handed to the client per send call (it packs them into size-limited batches). Default 5000. */
  sendChunk?: number | undefined;
  /** Send calls in flight at once (default 4); the client's rate limiter still paces the requests. */
  maxInFlight?: number | undefined;
  /** Test hook: called after a chunk was acknowledged and before it is committed. */
  afterAcknowledge?: ((keys: string[]) => Promise<void> | void) | undefined;
  /** Called after each chunk's outcome is recorded, with the entries acknowledged so far. */
  onSent?: ((acknowledged: number) => void) | undefined;
}

/** An acknowledged row as the sender hands it to the ack session: with its record print, never stored. */
export interface SentRow extends AckedRow {
  print?: RowPrint;
}

interface Outgoing {
  slot: number;
  row: SentRow;
  location: string;
  entry: SerialisedEntry;
}

/**
 * Sends rows in chunks while the read goes on, with up to `maxInFlight` chunks in flight, and records
 * each chunk's outcome in one transaction: acknowledged rows to the ack log, entries refused for a
 * transient reason or of unknown outcome to the pending entries (sent next run), and the settled keys'
 * pending entries deleted. Once sending stops (a batch whose outcome is unknown, or that could not be
 * sent), nothing more is dispatched, and what was not sent is kept as pending at the end.
 *
 * The entries earlier runs left waiting (and no row of this run superseded) go out after the read.
 *
 * A key read twice in one run (see run-diff.ts) is sent once when its earlier row is still waiting here
 * (the winner replaces it); when the earlier row is already on its way, the winner waits until every
 * chunk in flight has settled, so Customer.io receives the two in the order they were read.
 */
export class Sender {
  meantToSend = 0;
  stopped = false;
  stoppedEarly = false;
  /** Why sending stopped, as the client said it (status, Retry-After, attempts, network cause): shown in the report. */
  stopCause: string | undefined;
  failure: unknown;
  private buffer = new Map<number, Outgoing>();
  /** Per run slot (see run-diff.ts): 1 once a row of the key went out. */
  private dispatched = new Uint8Array(1024);
  private readonly late: Outgoing[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private ackChain: Promise<void> = Promise.resolve();
  private readonly entryOpts: EntryOptions;
  private readonly chunk: number;
  private readonly maxInFlight: number;

  private readonly client: SenderOptions['client'];
  private readonly acks: SnapshotAckSession;
  private readonly counts: SendCounts;
  private readonly rejects: RejectSink;
  private readonly book: PendingBook;

  constructor(private readonly opts: SenderOptions) {
    this.client = opts.client;
    this.acks = opts.acks;
    this.counts = opts.counts;
    this.rejects = opts.rejects;
    this.book = opts.book;
    this.entryOpts = opts.entryOptions;
    this.chunk = opts.sendChunk ?? 5000;
    this.maxInFlight = opts.maxInFlight ?? 4;
  }

  async add(slot: number, p: PreparedRow, location: string, print?: RowPrint): Promise<void> {
    this.meantToSend++;
    // Texts a worker thread made are taken as they are (the same serialisations, made off this thread).
    const row: SentRow = { key: p.key, hash: p.hash, ordering: p.ordering, payload: p.payloadJson ?? JSON.stringify(p.payload) };
    if (print) row.print = print;
    const out: Outgoing = { slot, location, row, entry: p.entry ?? serialiseEntry(toTrackEntry(p.key, p.payload, this.entryOpts)) };
    this.book.onTheWay(p.key);
    if (slot < this.dispatched.length && this.dispatched[slot] === 1) {
      this.late.push(out);
      return;
    }
    this.buffer.set(slot, out);
    if (this.buffer.size >= this.chunk) await this.dispatch();
  }

  /** A later row of the same key won: the earlier one, if still waiting here, is not sent. */
  withdraw(slot: number): void {
    const buffered = this.buffer.get(slot);
    if (buffered) {
      this.buffer.delete(slot);
      this.meantToSend--;
      this.book.withdrawn(buffered.row.key);
    } else {
      const i = this.late.findIndex((o) => o.slot === slot);
      if (i >= 0) {
        const [o] = this.late.splice(i, 1);
        this.meantToSend--;
        this.book.withdrawn(o!.row.key);
      }
    }
  }

  async finish(): Promise<void> {
    await this.dispatch();
    await this.drain();
    if (this.late.length > 0 && !this.stopped) {
      const late = this.late.splice(0);
      let i = 0;
      for (; i < late.length && !this.stopped; i += this.chunk) {
        this.send(late.slice(i, i + this.chunk));
        await this.drain();
      }
      // What stopping left unsent stays for keepLeftovers.
      this.late.push(...late.slice(i));
    }
    // No row of this run has these keys any more (a row that superseded one took its place): send them now.
    const waiting = [...this.book.waiting.values()];
    for (let i = 0; i < waiting.length && !this.stopped; i += this.chunk) {
      const chunk = waiting.slice(i, i + this.chunk).map((e) => this.fromPending(e));
      this.meantToSend += chunk.length;
      this.counts.retried += chunk.length;
      for (const o of chunk) this.book.waiting.delete(o.row.key);
      while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
      if (this.stopped) {
        // Never handed over: they stay pending as they are.
        this.meantToSend -= chunk.length;
        this.counts.retried -= chunk.length;
        break;
      }
      this.send(chunk);
    }
    await this.drain();
    await this.ackChain;
  }

  private fromPending(e: PendingEntry): Outgoing {
    return {
      slot: -1,
      location: e.location,
      row: { key: e.key, hash: e.hash, ordering: e.ordering, payload: e.payload },
      // Rebuilt from the mirrored payload, so a stamp carries this run's time.
      entry: serialiseEntry(toTrackEntry(e.key, readPayload(e.payload), this.entryOpts)),
    };
  }

  /**
   * After sending ended: keeps every entry meant to go out that was never handed over (sending stopped)
   * as pending, and deletes the pending entries superseded this run with no newer row on its way.
   */
  async keepLeftovers(): Promise<void> {
    const left = [...this.buffer.values(), ...this.late];
    this.buffer = new Map();
    this.late.length = 0;
    const pending = left.map((o) => pendingOf(o, 'unacknowledged'));
    const leftKeys = new Set(left.map((o) => o.row.key));
    const settled = [...this.book.dropped].filter((k) => this.book.stored.has(k) && !leftKeys.has(k));
    if (pending.length === 0 && settled.length === 0) return;
    await this.acks.record({ acknowledged: [], pending, settled });
    for (const k of settled) this.book.stored.delete(k);
    for (const p of pending) this.book.stored.add(p.key);
  }

  /** Waits for the chunks in flight and their acknowledgements, sending nothing more. */
  async settle(): Promise<void> {
    this.stopped = true;
    await this.drain();
    await this.ackChain;
  }

  private async dispatch(): Promise<void> {
    // Once stopped, the buffer stays as it is: keepLeftovers keeps it for the next run.
    if (this.buffer.size === 0 || this.stopped) return;
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    if (this.stopped) return;
    const chunk = [...this.buffer.values()];
    this.buffer = new Map();
    for (const o of chunk) this.markDispatched(o.slot);
    this.send(chunk);
  }

  private markDispatched(slot: number): void {
    if (slot >= this.dispatched.length) {
      const grown = new Uint8Array(Math.max(slot + 1, this.dispatched.length * 2));
      grown.set(this.dispatched);
      this.dispatched = grown;
    }
    this.dispatched[slot] = 1;
  }

  private async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  private send(chunk: Outgoing[]): void {
    const task = this.sendChunk(chunk).catch((err: unknown) => {
      this.failure ??= err;
      this.stopped = true;
    });
    const tracked = task.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async sendChunk(chunk: Outgoing[]): Promise<void> {
    const summary = await this.client.sendSerialised(
      chunk.map((o) => o.entry),
      this.opts.signal ? { signal: this.opts.signal } : {},
    );
    const acked: AckedRow[] = [];
    const keep: PendingEntry[] = [];
    const settled: string[] = [];
    const { book } = this;
    for (const r of summary.results) {
      const o = chunk[r.index]!;
      if (r.ok || r.reason !== 'not_sent') this.counts.attempted++;
      if (r.ok) {
        acked.push(o.row);
        if (book.stored.has(o.row.key)) settled.push(o.row.key);
      } else if (r.reason === 'not_sent' || r.reason === 'unknown_outcome') {
        this.stopped = true;
        this.stopCause ??= r.message;
        keep.push(pendingOf(o, 'unacknowledged'));
      } else if (r.retryable) {
        this.counts.retry_later++;
        keep.push(pendingOf(o, 'retryable'));
      } else {
        this.counts.refused++;
        if (book.stored.has(o.row.key)) settled.push(o.row.key);
        this.rejects.write({ location: o.location, code: `customerio_${r.reason ?? 'rejected'}`, reason: redact(r.message ?? 'refused by Customer.io'), ...(r.field ? { field: r.field } : {}) });
      }
    }
    // Outcomes are recorded one chunk after another: each is a transaction on the one state connection.
    const record = this.ackChain.then(async () => {
      await this.opts.afterAcknowledge?.(acked.map((a) => a.key));
      await this.acks.record({ acknowledged: acked, pending: keep, settled });
      for (const k of settled) book.stored.delete(k);
      for (const e of keep) book.stored.add(e.key);
      this.counts.acknowledged += acked.length;
      this.counts.sent += acked.length;
      this.opts.onSent?.(this.counts.sent);
    });
    this.ackChain = record.catch(() => undefined);
    await record;
  }
}

function pendingOf(o: Outgoing, reason: 'retryable' | 'unacknowledged'): PendingEntry {
  return { key: o.row.key, hash: o.row.hash, ordering: o.row.ordering ?? null, payload: o.row.payload ?? '{}', location: o.location, reason };
}
