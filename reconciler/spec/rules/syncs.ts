import { formatDuration, parseDuration } from '../../core/duration.ts';
import { isValidCron, maxGapMs, neverFires } from '../../core/schedule.ts';
import { sorted, type Located } from '../model.ts';
import type { SourceSpec } from '../schema/index.ts';
import type { Finding, Rule } from './rule.ts';

/** Use cases that need near-real-time data: a schedule can never serve them. */
export const MINUTE_USE_CASES = ['cart_recovery', 'cart_abandonment', 'browse_abandonment', 'checkout_recovery', 'back_in_stock_alert'];

const LATENCY_MS: Record<string, number> = { realtime: 60_000, minutes: 15 * 60_000, hourly: 3_600_000, daily: 86_400_000 };

export function latencyNeededMs(s: SourceSpec): number | undefined {
  if (!s.latency_needed) return undefined;
  return LATENCY_MS[s.latency_needed] ?? parseDuration(s.latency_needed);
}

// Words that mark a point-in-time action (return created, review submitted) as opposed to a state.
const ACTION_WORDS = /(^|_)(changed|updated|upgraded|downgraded|started|ended|paused|resumed|skipped|created|submitted|placed|requested|clicked|viewed|opened|added|removed|completed|cancelled|canceled|refunded|returned|shipped|delivered|purchased)($|_)/;
// Words that mark a state (tier, status, balance) as opposed to an action.
const STATE_WORDS = /(^|_)(status|tier|level|points|balance|state|plan|segment|eligible|is|has)($|_)/;

function timestampColumns(s: Located<SourceSpec>, isTimestampField: (f: string) => boolean): Array<{ path: (string | number)[]; column: string }> {
  const out: Array<{ path: (string | number)[]; column: string }> = [];
  for (const [field, column] of Object.entries(s.spec.fields)) if (isTimestampField(field)) out.push({ path: ['fields', field], column });
  if (s.spec.ordering) out.push({ path: ['ordering'], column: s.spec.ordering });
  if (s.spec.event) out.push({ path: ['event', 'timestamp_column'], column: s.spec.event.timestamp_column });
  return out;
}

export const syncRules: Rule[] = [
  {
    code: 'SYNC001',
    family: 'syncs',
    severity: 'error',
    title: 'Blanks may erase a field that is not declared clearable',
    harm: 'Sync jobs that send null/blank values wipe fields you still need: suddenly the VIP segment collapses.',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        if (s.spec.null_policy !== 'overwrite') continue;
        for (const f of Object.keys(s.spec.fields).sort()) {
          const def = model.fields.get(f)?.def;
          if (def && !def.clearable) {
            out.push({
              spec: s,
              path: ['fields', f],
              key: true,
              summary: `null_policy: overwrite lets a blank in "${s.spec.fields[f]}" erase "${f}", which is not declared clearable.`,
              detail: 'Use null_policy: protect (blanks never erase), or declare the field `clearable: true` if erasing is really intended.',
            });
          }
        }
      }
      return out;
    },
  },
  {
    code: 'SYNC002',
    family: 'syncs',
    severity: 'error',
    title: 'Timestamp columns without a declared source timezone',
    harm: 'Mixing timestamps without a timezone makes windows like "cancelled in the last 7 days" wildly inconsistent.',
    check(model) {
      const out: Finding[] = [];
      const isTs = (f: string) => model.fields.get(f)?.def.type === 'timestamp';
      for (const s of sorted(model.sources)) {
        if (s.spec.timezone) continue;
        const cols = timestampColumns(s, isTs);
        if (cols.length === 0) continue;
        out.push({
          spec: s,
          path: ['name'],
          summary: `Source "${s.name}" reads timestamps (${cols.map((c) => c.column).join(', ')}) but declares no timezone.`,
          detail: 'Add `timezone:` with the IANA zone of naive timestamps in the source (UTC if they are UTC).',
        });
      }
      return out;
    },
  },
  {
    code: 'SYNC003',
    family: 'syncs',
    severity: 'error',
    title: 'Schedule slower than the freshness SLO',
    harm: 'A schedule that runs less often than the freshness SLO guarantees stale data and alerts that always fire.',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        const maxAge = s.spec.freshness ? parseDuration(s.spec.freshness.max_age) : undefined;
        const gap = maxGapMs(s.spec.schedule);
        if (maxAge === undefined || gap === undefined || gap <= maxAge) continue;
        out.push({
          spec: s,
          path: ['schedule'],
          summary: `The schedule "${s.spec.schedule}" leaves up to ${formatDuration(gap)} between runs, longer than the freshness SLO of ${s.spec.freshness!.max_age}.`,
          detail: 'Run the sync more often, or relax freshness.max_age to what the schedule can deliver.',
        });
      }
      return out;
    },
  },
  {
    code: 'SYNC004',
    family: 'syncs',
    severity: 'error',
    title: 'A scheduled sync serving a use case that needs minutes',
    harm: 'Cart abandonment needs near-real-time events; a nightly sync turns "recovery" into "remind them after they already bought somewhere else".',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        const gap = maxGapMs(s.spec.schedule);
        if (s.spec.use_case && MINUTE_USE_CASES.includes(s.spec.use_case)) {
          out.push({
            spec: s,
            path: ['use_case'],
            summary: `Use case "${s.spec.use_case}" needs minutes; a scheduled sync is the wrong tool for it.`,
            detail: 'Send these as real-time events from the storefront (Customer.io Track API or a native integration).',
          });
          continue;
        }
        const need = latencyNeededMs(s.spec);
        if (need !== undefined && gap !== undefined && gap > need) {
          out.push({
            spec: s,
            path: ['latency_needed'],
            summary: `This use case needs data within ${s.spec.latency_needed}, but the schedule "${s.spec.schedule}" can leave ${formatDuration(gap)} between runs.`,
            detail: need <= LATENCY_MS.minutes! ? 'Minute-level use cases need real-time events, not a scheduled sync.' : 'Run the sync more often.',
          });
        }
      }
      return out;
    },
  },
  {
    code: 'SYNC005',
    family: 'syncs',
    severity: 'warning',
    title: 'Person attributes without an ordering column',
    harm: 'Out-of-order updates break trust: an older export arriving late can revert a customer’s status. Latest timestamp wins needs an ordering column.',
    check(model) {
      return sorted(model.sources)
        .filter((s) => s.spec.records === 'person' && !s.spec.ordering)
        .map((s) => ({
          spec: s,
          path: ['records'],
          summary: `Person source "${s.name}" has no ordering column, so an older row can overwrite a newer value.`,
          detail: 'Set `ordering:` to the column holding when each row last changed.',
        }));
    },
  },
  {
    code: 'SYNC006',
    family: 'syncs',
    severity: 'warning',
    title: 'The wrong record type for the data',
    harm: 'Attributes are for state (good for segmentation), events for point-in-time actions (good for "entered when X happened"). Mapped to the wrong shape, retention logic looks right but behaves wrong.',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        if (s.spec.records === 'person') {
          for (const f of Object.keys(s.spec.fields).sort()) {
            const def = model.fields.get(f)?.def;
            if (!def || def.type === 'timestamp') continue;
            const action = def.nature === 'action' || (def.nature === undefined && ACTION_WORDS.test(f) && !STATE_WORDS.test(f));
            if (action) {
              out.push({
                spec: s,
                path: ['fields', f],
                key: true,
                summary: `"${f}" looks like a point-in-time action synced as a person attribute.`,
                detail: 'Sync actions (return created, review submitted) as events with records: event; keep attributes for state.',
              });
            }
          }
        } else if (s.spec.records === 'event' && s.spec.event) {
          const name = s.spec.event.name;
          const stateFields = Object.keys(s.spec.fields).filter((f) => model.fields.get(f)?.def.nature === 'state');
          if ((STATE_WORDS.test(name) && !ACTION_WORDS.test(name)) || stateFields.length > 0) {
            out.push({
              spec: s,
              path: ['event', 'name'],
              summary: `Event "${name}" looks like customer state synced as events${stateFields.length ? ` (state fields: ${stateFields.join(', ')})` : ''}.`,
              detail: 'Sync state (VIP tier, subscription status) as person attributes with an updated_at companion; use events to enter journeys.',
            });
          }
        }
      }
      return out;
    },
  },
  {
    code: 'SYNC007',
    family: 'syncs',
    severity: 'warning',
    title: 'Warehouse query without :last_sync_at',
    harm: 'A query that ignores the last successful run re-reads the whole table every time; slow syncs fall behind their schedule.',
    check(model) {
      return sorted(model.sources)
        .filter((s) => s.spec.connector.type === 'postgres' && !s.spec.connector.query.includes(':last_sync_at'))
        .map((s) => ({
          spec: s,
          path: ['connector', 'query'],
          summary: `The query of "${s.name}" does not use :last_sync_at, so every run reads every row.`,
          detail: 'Filter on a change timestamp, e.g. `where updated_at > :last_sync_at`. tidemark still sends only changed rows.',
        }));
    },
  },
  {
    code: 'SYNC008',
    family: 'syncs',
    severity: 'error',
    title: 'Schedule is not a valid cron expression, or never fires',
    harm: 'A schedule that cannot be parsed, or names a date that never comes (30 February), never runs: the sync silently stops.',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        if (!isValidCron(s.spec.schedule)) {
          out.push({ spec: s, path: ['schedule'], summary: `"${s.spec.schedule}" is not a valid 5-field cron expression (minute hour day month weekday, UTC).` });
        } else if (neverFires(s.spec.schedule)) {
          out.push({
            spec: s,
            path: ['schedule'],
            summary: `"${s.spec.schedule}" never fires: no date in the next five years matches its day and month fields.`,
            detail: 'Check the day of month against the month (February has no 30th; April, June, September and November have no 31st).',
          });
        }
      }
      return out;
    },
  },
  {
    code: 'SYNC009',
    family: 'syncs',
    severity: 'warning',
    title: 'No freshness SLO',
    harm: 'Sync failures happen. Without a freshness SLO nobody notices a sync stopped, and segments keep acting on stale data.',
    check(model) {
      return sorted(model.sources)
        .filter((s) => !s.spec.freshness)
        .map((s) => ({
          spec: s,
          path: ['schedule'],
          summary: `Source "${s.name}" has no freshness SLO (freshness.max_age), so a stopped sync goes unnoticed.`,
        }));
    },
  },
  {
    code: 'SYNC010',
    family: 'syncs',
    severity: 'error',
    title: 'Record type settings missing or misplaced',
    harm: 'Events need a name, a timestamp and a dedupe key to be sent exactly once; objects need a type and an id.',
    check(model) {
      const out: Finding[] = [];
      for (const s of sorted(model.sources)) {
        const { records } = s.spec;
        if (records === 'event' && !s.spec.event) {
          out.push({ spec: s, path: ['records'], summary: 'records: event needs an `event:` block (name, timestamp_column, id_columns).' });
        }
        if (records === 'object' && !s.spec.object) {
          out.push({ spec: s, path: ['records'], summary: 'records: object needs an `object:` block (type, id_column).' });
        }
        if (records !== 'event' && s.spec.event) out.push({ spec: s, path: ['event'], key: true, summary: `An \`event:\` block only applies to records: event (this source has records: ${records}).` });
        if (records !== 'object' && s.spec.object) out.push({ spec: s, path: ['object'], key: true, summary: `An \`object:\` block only applies to records: object (this source has records: ${records}).` });
      }
      return out;
    },
  },
];
