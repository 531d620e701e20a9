/**
 * What the scheduled run tells people: one problem per source and kind (stale, failing, rejecting rows)
 * and per failed step of the job (audiences, surveys, responses), each with a stable key the issue's
 * hidden marker carries, so the next run finds the same issue instead of opening another. Pure.
 *
 * Issue text is built here from counts, ages and statuses only. Error texts of runs are left out on
 * purpose: a refusal from Customer.io can quote a row, and an issue is read by everyone in the repository.
 */
export interface SourceFacts {
  source: string;
  last_success: string | null;
  age_seconds: number | null;
  max_age_seconds: number | null;
  last_run_status: string | null;
  reject_rate: number | null;
  pending: number;
  alerts: Array<{ kind: string }>;
}

export type StepOutcome = 'success' | 'failure' | 'cancelled' | 'skipped';

export interface Problem {
  key: string;
  labels: string[];
  title: string;
  body: string;
}

/** A response-mapping alert of `tidemark status` (question ids, recodes and reason codes; never typed text). */
export interface MappingFacts {
  kind: string;
  target: string;
  message: string;
}

export interface ProblemReport {
  problems: Problem[];
  /** Keys checked this run and found well: their open issues are closed. */
  recovered: Map<string, string>;
  /** Key prefixes checked as a whole this run: an open issue under one that is not a problem now recovered. */
  recoveredPrefixes: Map<string, string>;
  /** Sources this run knows: an open issue about any other source is closed as no longer declared. */
  sources: Set<string>;
}

export const BASE_LABEL = 'tidemark';

const MAPPING_WORDS: Record<string, string> = {
  question_missing: 'its survey question is gone',
  choice_missing: 'a coded choice is gone',
  unmapped_answers: 'answers no reason code names',
  code_feeds_nothing: 'reason codes feed nothing',
};

const KINDS: Record<string, { group: 'stale' | 'failed' | 'rejects' }> = {
  stale: { group: 'stale' },
  never_synced: { group: 'stale' },
  run_failed: { group: 'failed' },
  run_incomplete: { group: 'failed' },
  reject_rate: { group: 'rejects' },
};

export function problemMarker(environment: string, key: string): string {
  return `<!-- tidemark-problem environment=${encodeURIComponent(environment)} key=${encodeURIComponent(key)} -->`;
}

const MARKER = /^<!-- tidemark-problem environment=([^\s>]+) key=([^\s>]+) -->/;

export function parseProblemMarker(body: string | null | undefined): { environment: string; key: string } | undefined {
  const m = MARKER.exec(body ?? '');
  if (!m) return undefined;
  try {
    return { environment: decodeURIComponent(m[1]!), key: decodeURIComponent(m[2]!) };
  } catch {
    return undefined;
  }
}

function age(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

const safe = (s: string) => s.replace(/[^\w.:-]/g, '_');

export function problemReport(o: {
  environment: string;
  checkedAt: string;
  statuses: readonly SourceFacts[];
  steps: ReadonlyMap<string, StepOutcome>;
  /** The response mapping's alerts; absent when it was not checked (its issues are then left as they are). */
  mapping?: readonly MappingFacts[];
  runUrl?: string;
}): ProblemReport {
  const env = safe(o.environment);
  const problems: Problem[] = [];
  const recovered = new Map<string, string>();
  const seen = (k: string) => problems.some((p) => p.key === k);
  const footer = (key: string) =>
    `\n---\nChecked ${o.checkedAt}${o.runUrl ? ` by [this run](${o.runUrl})` : ''}. Run \`tidemark status --env ${env}\` for the details (the run's logs hold its error messages). ` +
    `This issue is updated while the problem lasts and closed by tidemark when it recovers. Key: \`${key}\`.\n`;
  for (const s of o.statuses) {
    const name = safe(s.source);
    const facts =
      `| | |\n| --- | --- |\n| last success | ${s.last_success ?? 'never'} (${age(s.age_seconds)} ago) |\n| freshness SLO | ${s.max_age_seconds === null ? 'none' : age(s.max_age_seconds)} |\n` +
      `| last run | ${s.last_run_status ?? 'none'} |\n| rejected rows | ${s.reject_rate === null ? 'n/a' : `${(s.reject_rate * 100).toFixed(1)}%`} |\n| entries waiting | ${s.pending} |\n`;
    const groups = new Set(s.alerts.map((a) => KINDS[a.kind]?.group).filter((g): g is 'stale' | 'failed' | 'rejects' => g !== undefined));
    for (const group of ['stale', 'failed', 'rejects'] as const) {
      const key = `${group}:${s.source}`;
      if (!groups.has(group)) {
        recovered.set(key, group === 'stale' ? `${name} is fresh again (last success ${age(s.age_seconds)} ago)` : group === 'failed' ? `the last run of ${name} ${s.last_run_status ?? 'ran'}` : `the rejected-row rate of ${name} is back under its threshold`);
        continue;
      }
      if (seen(key)) continue;
      const title =
        group === 'stale'
          ? `tidemark: source ${name} is stale in ${env}`
          : group === 'failed'
            ? `tidemark: source ${name} is failing in ${env}`
            : `tidemark: source ${name} rejects too many rows in ${env}`;
      const lead =
        group === 'stale'
          ? s.last_success === null
            ? `Source \`${name}\` has never synced successfully in \`${env}\`. Segments guarded by it publish nothing until it is fresh.`
            : `Source \`${name}\` last synced ${age(s.age_seconds)} ago in \`${env}\`, over its freshness SLO. Segments guarded by it are frozen until it is fresh.`
          : group === 'failed'
            ? `The last run of source \`${name}\` in \`${env}\` ${s.last_run_status === 'partial' || s.pending > 0 ? 'did not deliver everything' : 'failed'}.`
            : `Source \`${name}\` in \`${env}\` had more rejected rows than its threshold. The rejects file of the run (the \`rejects\` artifact) says which rows and why.`;
      problems.push({ key, labels: [BASE_LABEL, `${BASE_LABEL}:${group}`], title, body: `${problemMarker(o.environment, key)}\n${lead}\n\n${facts}${footer(key)}` });
    }
  }
  for (const [step, outcome] of [...o.steps].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const key = `step:${step}`;
    const name = safe(step);
    if (outcome === 'success') recovered.set(key, `\`${name}\` succeeded`);
    if (outcome !== 'failure') continue;
    problems.push({
      key,
      labels: [BASE_LABEL, `${BASE_LABEL}:failed`],
      title: `tidemark: ${name} failed in ${env}`,
      body: `${problemMarker(o.environment, key)}\nThe step \`${name}\` of the scheduled run failed in \`${env}\`: what it planned was not all done (the next run retries it).\n${footer(key)}`,
    });
  }
  const recoveredPrefixes = new Map<string, string>();
  if (o.mapping) {
    recoveredPrefixes.set('responses:', 'the response mapping reads and feeds again');
    for (const m of o.mapping) {
      const key = `responses:${m.target}:${m.kind}`;
      if (seen(key)) continue;
      const target = safe(m.target);
      problems.push({
        key,
        labels: [BASE_LABEL, `${BASE_LABEL}:responses`],
        title: `tidemark: survey target ${target}: ${MAPPING_WORDS[m.kind] ?? safe(m.kind)} in ${env}`,
        body: `${problemMarker(o.environment, key)}\nThe responses of survey target \`${target}\` in \`${env}\`: ${m.message.replace(/[<>@]/g, ' ')}.\n${footer(key)}`,
      });
    }
  }
  return { problems, recovered, recoveredPrefixes, sources: new Set(o.statuses.map((s) => s.source)) };
}

/** Parses `--step NAME=OUTCOME` (GitHub's `steps.<id>.outcome` values). */
export function parseStep(text: string): [string, StepOutcome] | undefined {
  const m = /^([A-Za-z][\w-]{0,63})=(success|failure|cancelled|skipped)$/.exec(text);
  return m ? [m[1]!, m[2] as StepOutcome] : undefined;
}
