/**
 * The survey job: `tidemark surveys plan` and `tidemark surveys run`, and the survey part of a plan's data
 * impact. A run first finishes every send an earlier run left unfinished (the journal), then evaluates the
 * audiences and each target's eligibility at the run's clock, then sends per target: contacts imported in
 * bulk into the target's mailing list, one distribution per send, invitations recorded once Qualtrics
 * acknowledged them. Planning does the same evaluation inside a transaction that is rolled back.
 */
import { evaluateAudiences, refreshMirror } from '../audiences/evaluate.ts';
import { UserError } from '../core/user-error.ts';
import { parseDuration } from '../core/duration.ts';
import { atMost } from '../core/lanes.ts';
import type { QualtricsClient } from '../providers/qualtrics/client.ts';
import type { SurveySend } from '../state/survey-sends.ts';
import type { ContactSearchFilter } from '../providers/qualtrics/types.ts';
import { effectiveCap, evaluateEligibility, surveyTargetOrder, type EligibilityRequest, type EligibilityResult, type QualtricsInvite, type TargetEligibility } from '../surveys/eligibility.ts';
import { batchIdFor, emailField, payloadFields } from '../surveys/payload.ts';
import { advanceSend, type SendOutcome } from '../surveys/send.ts';
import type { SurveyTargetSpec } from '../spec/schema/index.ts';
import { uiSegmentLoader } from './audiences-job.ts';
import { rolledBack } from './dry-run.ts';
import { checkSurveyPayloads } from './survey-mapping.ts';
import type { OpenEnvironment } from './use-cases.ts';

/** The distribution's link stays open this long when a target declares no `response_window`. */
export const DEFAULT_RESPONSE_WINDOW = '72h';

export class SurveySendError extends UserError {
  override name = 'SurveySendError';
}

/** Where a target's contacts go: its mailing list, as the last apply created it. */
interface ListRef {
  directoryId: string;
  mailingListId: string;
}

async function mailingListOf(ws: OpenEnvironment, target: string): Promise<ListRef | undefined> {
  const managed = await ws.conn.store.getManaged(`qualtrics.mailing_list.${target}`);
  if (!managed) return undefined;
  const attrs = (managed.attributes ?? {}) as { directory_id?: unknown };
  const directoryId = typeof attrs.directory_id === 'string' && attrs.directory_id ? attrs.directory_id : ws.model.workspace?.spec.environments[ws.conn.environment]?.qualtrics?.directory_id;
  return directoryId ? { directoryId, mailingListId: managed.remoteId } : undefined;
}

/**
 * The people Qualtrics reports opted out of a target, by extRef: unsubscribed from the target's own
 * mailing list, or from the whole directory as any list tidemark manages in that directory shows them.
 * A person who opted out of everything through one target's invitation has never been in the next
 * target's list, so reading that list alone would invite them again (and Qualtrics would drop the email
 * while tidemark counted the invitation against their cap). A list element that reports `unsubscribed`
 * without saying which level it is counts as directory-wide: when unsure, nobody is asked.
 * Each list is read once per run, however many targets share the directory.
 */
export function optedOutLoader(ws: OpenEnvironment, client: QualtricsClient | undefined) {
  const lists = new Map<string, Promise<{ list: Set<string>; directory: Set<string> }>>();
  const read = (ref: ListRef) => {
    const key = `${ref.directoryId}/${ref.mailingListId}`;
    let p = lists.get(key);
    if (!p) {
      p = (async () => {
        const list = new Set<string>();
        const directory = new Set<string>();
        for await (const c of client!.listMailingListContacts(ref.directoryId, ref.mailingListId)) {
          if (typeof c.extRef !== 'string' || !c.extRef) continue;
          const wide = (c as { directoryUnsubscribed?: unknown }).directoryUnsubscribed === true || (c.unsubscribed === true && c.mailingListUnsubscribed !== true);
          if (c.unsubscribed === true || c.mailingListUnsubscribed === true || wide) list.add(c.extRef);
          if (wide) directory.add(c.extRef);
        }
        return { list, directory };
      })();
      lists.set(key, p);
    }
    return p;
  };
  return async (target: string): Promise<Set<string>> => {
    const own = client ? await mailingListOf(ws, target) : undefined;
    if (!client || !own) return new Set();
    const out = new Set((await read(own)).list);
    for (const other of await managedListsIn(ws, own.directoryId)) {
      if (other.mailingListId === own.mailingListId) continue;
      for (const id of (await read(other)).directory) out.add(id);
    }
    return out;
  };
}

/** Every mailing list tidemark manages in this environment's directory (one per survey target). */
async function managedListsIn(ws: OpenEnvironment, directoryId: string): Promise<ListRef[]> {
  const out: ListRef[] = [];
  for (const m of await ws.conn.store.listManaged()) {
    if (!m.address.startsWith('qualtrics.mailing_list.')) continue;
    const ref = await mailingListOf(ws, m.address.slice('qualtrics.mailing_list.'.length));
    if (ref && ref.directoryId === directoryId) out.push(ref);
  }
  return out;
}

/**
 * The people whose address Qualtrics reports bounced, by extRef, with the addresses that bounced
 * (lowercase): the bounced contacts (C7) of every list tidemark manages in the target's directory. A
 * bounce is the address's, not the list's, so one seen through any list stops every target; eligibility
 * then removes a person only while the mirror still holds that address. Each list is read once per run:
 * one call per 100 bounced contacts per list.
 */
export function bouncedLoader(ws: OpenEnvironment, client: QualtricsClient | undefined) {
  const lists = new Map<string, Promise<Array<[string, string]>>>();
  const read = (ref: ListRef) => {
    const key = `${ref.directoryId}/${ref.mailingListId}`;
    let p = lists.get(key);
    if (!p) {
      p = (async () => {
        const out: Array<[string, string]> = [];
        for await (const c of client!.listBouncedContacts(ref.directoryId, ref.mailingListId)) {
          if (typeof c.extRef === 'string' && c.extRef) out.push([c.extRef, typeof c.email === 'string' ? c.email.trim().toLowerCase() : '']);
        }
        return out;
      })();
      lists.set(key, p);
    }
    return p;
  };
  return async (target: string): Promise<Map<string, ReadonlySet<string>>> => {
    const own = client ? await mailingListOf(ws, target) : undefined;
    const out = new Map<string, Set<string>>();
    if (!client || !own) return out;
    const refs = await managedListsIn(ws, own.directoryId);
    if (!refs.some((r) => r.mailingListId === own.mailingListId)) refs.push(own);
    for (const ref of refs) {
      for (const [extRef, email] of await read(ref)) {
        let set = out.get(extRef);
        if (!set) out.set(extRef, (set = new Set()));
        set.add(email);
      }
    }
    return out;
  };
}

/** People per directory search: two filter leaves each (extRef, email), well inside one page of 100 hits. */
const SEARCH_BATCH = 50;
/** Email histories read at once (the client's rate limiter paces them against the brand's budget). */
const HISTORY_CONCURRENCY = 8;
/** Largest directory read whole instead of searched (its contacts' ids, extRefs and addresses are held for the run). */
const DIRECTORY_LISTING_MAX = 200_000;

/** `yyyy-MM-dd HH:mm:ss` (UTC, as documented) or ISO-8601; an unreadable date is read as `nowMs` (the safe side: it counts). */
function historyMs(date: string | null | undefined, nowMs: number): number {
  if (!date) return nowMs;
  const iso = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(date) ? `${date.replace(' ', 'T')}Z` : date;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? nowMs : ms;
}

/**
 * The invitations Qualtrics reports it emailed people that tidemark did not send: another team's
 * distribution from the Qualtrics UI or another tool. For each page of candidates eligibility asks about
 * (only targets under a cap, only people tidemark's own records left under it: the moment window, never
 * the audience):
 * - their directory contacts, found by extRef or current address (a contact made in the UI often has no
 *   extRef, and a list made with "create contact" duplicates contacts): one search (K5) per 50 people,
 *   or, once that would cost more than reading the whole directory (K1, 100 contacts a call; its size from
 *   D1, one call), the directory read once for the run: ⌈n/50⌉ and ⌈D/100⌉ calls whichever is smaller, at
 *   most twice over (directories over 200,000 contacts are always searched);
 * - each contact's email history (K7, `type=email`): one call per contact found (per 100 entries), so
 *   people Qualtrics has never heard of cost nothing beyond the search;
 * - kept: `type` Invite with `result` Success (a Skipped, Bounce or Blocked email reached nobody), from a
 *   distribution tidemark did not create (the send journal's and invitations' distribution ids; tidemark's
 *   own are already counted from its records).
 * First, once per run, whether there is anything to find: the brand's surveys (Y1) and each one's
 * distributions sent since the longest cap period began (X2, `sendStartDate`), stopping at the first
 * invite tidemark did not create. None (the usual day): no per-person call at all.
 * Each person and each contact is read at most once per run, whichever targets ask. A plan made while a
 * send is between creating its distribution and journaling it counts that distribution as foreign: that
 * plan over-counts `capped`, never the run (it finishes open sends before evaluating).
 */
export function qualtricsInvitesLoader(ws: OpenEnvironment, client: QualtricsClient | undefined) {
  const directoryId = ws.model.workspace?.spec.environments[ws.conn.environment]?.qualtrics?.directory_id;
  const nowMs = ws.clock.now().getTime();
  const byPerson = new Map<string, Promise<QualtricsInvite[]>>();
  const byContact = new Map<string, Promise<QualtricsInvite[]>>();
  let own: Promise<Set<string>> | undefined;
  const longestCapMs = Math.max(0, ...surveyTargetOrder(ws.model, ws.conn.environment).map((t) => effectiveCap(ws.model, t.spec, t.name)?.perMs ?? 0));
  let foreign: Promise<boolean> | undefined;
  const anyForeignInvite = async (): Promise<boolean> => {
    own ??= ws.conn.store.surveys.sends.distributionIds();
    const mine = await own;
    const sendStartDate = new Date(nowMs - longestCapMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
    for await (const survey of client!.listSurveys()) {
      for await (const d of client!.listDistributions(survey.id, { sendStartDate })) {
        // A type Qualtrics did not give is read as an invite (the safe side); reminders and thank-yous are not.
        if (typeof d.requestType === 'string' && d.requestType && d.requestType !== 'Invite') continue;
        if (!mine.has(d.id)) return true;
      }
    }
    return false;
  };
  const history = (contactId: string): Promise<QualtricsInvite[]> => {
    let p = byContact.get(contactId);
    if (!p) {
      p = (async () => {
        own ??= ws.conn.store.surveys.sends.distributionIds();
        const mine = await own;
        const out: QualtricsInvite[] = [];
        for await (const e of client!.contactEmailHistory(directoryId!, contactId)) {
          if (e.type !== 'Invite' || e.result !== 'Success') continue;
          if (typeof e.distributionId === 'string' && mine.has(e.distributionId)) continue;
          out.push({ at_ms: historyMs(e.date, nowMs), survey: typeof e.surveyId === 'string' && e.surveyId ? e.surveyId : null });
        }
        return out;
      })();
      byContact.set(contactId, p);
    }
    return p;
  };
  // The directory's size (D1), read once; and the directory itself, once searching would cost more.
  let size: Promise<number | undefined> | undefined;
  let listing: Promise<{ byExtRef: Map<string, string[]>; byEmail: Map<string, string[]> }> | undefined;
  let searches = 0;
  const directorySize = async (): Promise<number | undefined> => {
    for await (const d of client!.listDirectories()) if (d.directoryId === directoryId) return d.contactCount;
    return undefined;
  };
  const readDirectory = async () => {
    const byExtRef = new Map<string, string[]>();
    const byEmail = new Map<string, string[]>();
    const add = (m: Map<string, string[]>, k: string, id: string) => m.set(k, [...(m.get(k) ?? []), id]);
    for await (const c of client!.listDirectoryContacts(directoryId!)) {
      if (typeof c.extRef === 'string' && c.extRef) add(byExtRef, c.extRef, c.contactId);
      if (typeof c.email === 'string' && c.email.trim()) add(byEmail, c.email.trim().toLowerCase(), c.contactId);
    }
    return { byExtRef, byEmail };
  };
  const lookup = async (batch: ReadonlyArray<{ id: string; email: string | null }>): Promise<Map<string, Set<string>>> => {
    const contacts = new Map<string, Set<string>>(batch.map((p) => [p.id, new Set()]));
    if (listing) {
      const { byExtRef, byEmail } = await listing;
      for (const p of batch) {
        const email = p.email?.trim().toLowerCase();
        for (const id of [...(byExtRef.get(p.id) ?? []), ...((email && byEmail.get(email)) || [])]) contacts.get(p.id)!.add(id);
      }
      return contacts;
    }
    const byEmail = new Map<string, string[]>();
    const filters: ContactSearchFilter[] = [];
    for (const p of batch) {
      filters.push({ filterType: 'extRef', comparison: 'eq', value: p.id });
      const email = p.email?.trim().toLowerCase();
      if (email) {
        filters.push({ filterType: 'email', comparison: 'eq', value: email });
        byEmail.set(email, [...(byEmail.get(email) ?? []), p.id]);
      }
    }
    searches += 1;
    for await (const hit of client!.searchDirectoryContacts(directoryId!, { conjunction: 'or', filters })) {
      const ext = typeof hit.externalDataReference === 'string' ? hit.externalDataReference : undefined;
      if (ext && contacts.has(ext)) contacts.get(ext)!.add(hit.id);
      const email = typeof hit.email === 'string' ? hit.email.trim().toLowerCase() : undefined;
      for (const id of (email && byEmail.get(email)) || []) contacts.get(id)!.add(hit.id);
    }
    return contacts;
  };
  return async (people: ReadonlyArray<{ id: string; email: string | null }>): Promise<Map<string, ReadonlyArray<QualtricsInvite>>> => {
    const out = new Map<string, ReadonlyArray<QualtricsInvite>>();
    if (!client || !directoryId) return out;
    foreign ??= anyForeignInvite();
    if (!(await foreign)) return out;
    const fresh = people.filter((p) => !byPerson.has(p.id));
    if (fresh.length && !listing) {
      size ??= directorySize();
      const d = await size;
      const needed = Math.ceil(fresh.length / SEARCH_BATCH);
      if (d !== undefined && d <= DIRECTORY_LISTING_MAX && Math.ceil(d / 100) < searches + needed) listing = readDirectory();
    }
    for (let i = 0; i < fresh.length; i += SEARCH_BATCH) {
      const batch = fresh.slice(i, i + SEARCH_BATCH);
      const contacts = await lookup(batch);
      // Every history this batch needs, a few at a time, before the next search.
      const ids = [...new Set([...contacts.values()].flatMap((set) => [...set]))];
      await atMost(HISTORY_CONCURRENCY, ids.map((id) => () => history(id)));
      for (const p of batch) byPerson.set(p.id, Promise.all([...contacts.get(p.id)!].map(history)).then((lists) => lists.flat()));
    }
    for (const p of people) {
      const invites = await byPerson.get(p.id)!;
      if (invites.length) out.set(p.id, invites);
    }
    return out;
  };
}

/** The eligibility hooks that read what Qualtrics reports: opted out, bounced, invitations sent outside tidemark. */
export function qualtricsReports(ws: OpenEnvironment): Pick<EligibilityRequest, 'optedOut' | 'bounced' | 'qualtricsInvites'> {
  const client = ws.conn.qualtrics;
  return { optedOut: optedOutLoader(ws, client), bounced: bouncedLoader(ws, client), qualtricsInvites: qualtricsInvitesLoader(ws, client) };
}

async function evaluate(ws: OpenEnvironment, now: Date): Promise<EligibilityResult> {
  const env = ws.conn.environment;
  const email = emailField(ws.model);
  await evaluateAudiences({ model: ws.model, environment: env, store: ws.conn.store, now, loadUiSegment: uiSegmentLoader(ws) });
  return evaluateEligibility({ model: ws.model, environment: env, store: ws.conn.store, now, ...qualtricsReports(ws), ...(email ? { emailField: email } : {}) });
}

/** `surveys plan`: the funnel per target at the run's clock; nothing is written or sent. */
export async function planSurveys(ws: OpenEnvironment): Promise<EligibilityResult> {
  const now = ws.clock.now();
  return rolledBack(ws.conn.store, () => evaluate(ws, now));
}

export interface TargetRun {
  target: string;
  /** What eligibility found (counts). */
  eligibility: TargetEligibility;
  /** sent: a send reached `recorded`; nothing: nobody to invite; skipped: not sendable (why in `note`); failed. */
  status: 'sent' | 'nothing' | 'skipped' | 'failed';
  note?: string;
  send?: SendOutcome;
}

export interface SurveyRunResult {
  at: string;
  /** Sends an earlier run left unfinished, finished (or abandoned) first. */
  resumed: SendOutcome[];
  targets: TargetRun[];
  /** Everything the run set out to send was sent and recorded. */
  ok: boolean;
}

export interface SurveyRunOptions {
  /** Called between the steps of a send (the crash tests kill the process here). */
  onStep?: (step: string) => void | Promise<void>;
  pollIntervalMs?: number;
  importChunk?: number;
}

function sendDeps(ws: OpenEnvironment, spec: SurveyTargetSpec, client: QualtricsClient, opts: SurveyRunOptions) {
  const email = emailField(ws.model);
  if (!email) throw new SurveySendError('no field declares `format: email`, so there is no address to send survey invitations to', { hint: 'Mark the email attribute in Fields with `format: email`.' });
  return {
    journal: ws.conn.store.surveys.sends,
    qualtrics: client,
    distribution: spec.distribution!,
    payload: payloadFields(ws.model, spec.payload),
    emailField: email,
    now: () => ws.clock.now(),
    ...(opts.onStep ? { onStep: opts.onStep } : {}),
    ...(opts.pollIntervalMs !== undefined ? { pollIntervalMs: opts.pollIntervalMs } : {}),
    ...(opts.importChunk !== undefined ? { importChunk: opts.importChunk } : {}),
  };
}

/** `surveys run`: finish what an earlier run left, evaluate, send. Holds the environment's lock throughout. */
export async function runSurveys(ws: OpenEnvironment, who: string, opts: SurveyRunOptions = {}): Promise<SurveyRunResult> {
  const client = ws.conn.qualtrics;
  if (!client) throw new SurveySendError(`environment ${ws.conn.environment} declares no qualtrics section, so there is nowhere to send surveys`);
  const lock = await ws.conn.store.acquireLock({ operation: 'surveys run', who });
  try {
    const journal = ws.conn.store.surveys.sends;
    const resumed: SendOutcome[] = [];
    const opened = await journal.open();
    // A resumed send reads its contacts' addresses from the mirror: brought up to date first, as an
    // evaluation would (on Postgres a crash of the server empties the unlogged mirror; migration 0011).
    if (opened.length) await refreshMirror(ws.model, ws.conn.environment, ws.conn.store);
    for (const open of opened) {
      const spec = ws.model.surveyTargets.get(open.target)?.spec;
      if (!spec?.distribution) {
        await journal.setPhase(open.send_id, 'abandoned', { note: 'its survey target or distribution is no longer declared' });
        resumed.push({ send_id: open.send_id, target: open.target, phase: 'abandoned', to_invite: 0, invited: 0, held_out: 0, failed: 0, no_email: 0, distribution_id: null, note: 'its survey target or distribution is no longer declared' });
        continue;
      }
      resumed.push(await advanceSend(open, sendDeps(ws, spec, client, opts)));
    }

    const now = ws.clock.now();
    const eligibility = await evaluate(ws, now);
    const targets: TargetRun[] = [];
    // The surveys themselves, read right before sending: a payload field CX renamed or removed in the
    // survey's flow would reach Qualtrics as data nobody reads, so that target waits for the fix.
    const payloadCheck = new Map((await checkSurveyPayloads(ws)).findings.map((f) => [f.target, f]));
    const byName = new Map(surveyTargetOrder(ws.model, ws.conn.environment).map((t) => [t.name, t]));
    for (const e of eligibility.targets) {
      const t = byName.get(e.target)!;
      const run: TargetRun = { target: e.target, eligibility: e, status: 'nothing' };
      targets.push(run);
      if (e.eligible + e.held_out === 0) {
        if (e.waiting) run.note = `${e.waiting} waiting for the send window, which opens ${e.waiting_until}`;
        continue;
      }
      if (!t.spec.distribution) {
        Object.assign(run, { status: 'skipped', note: 'no `distribution` declared: tidemark has no invitation email to send' });
        continue;
      }
      const check = payloadCheck.get(t.name);
      if (check?.blocksSend) {
        const why =
          check.status === 'drift'
            ? `survey ${check.survey} no longer reads payload field(s) ${check.notRead.map((f) => f.field).join(', ')} (drift, REF011: \`tidemark plan\` shows it)`
            : check.status === 'missing_survey'
              ? `survey ${check.survey} does not exist (REF010)`
              : `the fields survey ${check.survey} reads could not be checked (${check.status})`;
        Object.assign(run, { status: 'failed', note: `not sent: ${why}` });
        continue;
      }
      const list = await mailingListOf(ws, t.name);
      if (!list) {
        Object.assign(run, { status: 'failed', note: 'its mailing list does not exist yet: run `tidemark apply` first' });
        continue;
      }
      const plannedAt = now.toISOString();
      const sendId = `${t.name}@${plannedAt}`;
      const window = parseDuration(t.spec.response_window ?? DEFAULT_RESPONSE_WINDOW)!;
      const staged: Omit<SurveySend, 'phase' | 'distribution_id' | 'note'> = {
        send_id: sendId,
        target: t.name,
        survey_id: t.spec.survey,
        directory_id: list.directoryId,
        mailing_list_id: list.mailingListId,
        batch_id: batchIdFor(ws.conn.environment, sendId),
        planned_at: plannedAt,
        send_at: plannedAt,
        expires_at: new Date(now.getTime() + window).toISOString(),
      };
      try {
        if (await journal.get(sendId)) {
          // The same clock twice (a pinned --now): that send happened; eligibility already excluded its people.
          Object.assign(run, { status: 'nothing', note: 'already sent at this clock' });
          continue;
        }
        await journal.stage(staged);
        const send = await advanceSend((await journal.get(sendId))!, sendDeps(ws, t.spec, client, opts));
        Object.assign(run, { status: send.phase === 'recorded' ? 'sent' : 'failed', send, ...(send.note ? { note: send.note } : {}) });
      } catch (err) {
        // Service failures are UserErrors (ProviderError) with redacted messages; anything else is a bug.
        if (!(err instanceof UserError)) throw err;
        Object.assign(run, { status: 'failed', note: `${(err as Error).message} (the send resumes on the next run)` });
      }
    }
    const ok = targets.every((t) => t.status !== 'failed') && resumed.every((s) => s.phase === 'recorded');
    return { at: now.toISOString(), resumed, targets, ok };
  } finally {
    await lock.release();
  }
}

/** The survey part of a plan's data impact: per target, who would be invited and why others are not (counts). */
export async function surveyImpact(ws: OpenEnvironment): Promise<EligibilityResult> {
  return planSurveys(ws);
}
