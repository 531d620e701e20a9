/**
 * Survey export at scale (issue 12 point 8: "exporting 50,000 contacts: the request count shows bulk
 * import, not per-contact calls"). A measurement, not a test: it exits 1 only when the requests show
 * something other than the bulk path (an import request per 5,000 contacts, one distribution, no
 * per-contact call) or Qualtrics does not end up holding every contact once.
 *
 *   npx tsx test/bench/survey-export.bench.ts [people=50000]
 *
 * The project is the survey tests' fixture (test/support/survey-fixture.ts) with one target and no
 * holdout, so every person is exported: a Workspace with Customer.io and Qualtrics, a person source and
 * an `order_delivered` source, everyone delivered 3 days before the clock (inside the 2–5 day moment
 * window). The sandbox runs in this process with its defaults (Qualtrics 3,000 requests a minute, imports
 * finishing over 3 polled steps), as the product meets it. Setup (apply, both syncs, in process) is timed
 * but is not the subject; the subject is `tidemark surveys run` as its own process (bin/tidemark.js,
 * `TIDEMARK_REPORT_RSS=1` for its peak RSS), and the sandbox's request counts by route during it, with
 * when each route was first and last called (sampled every 100 ms), to show where the wall time goes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createSandbox } from '../../reconciler/sandbox/index.ts';
import { IMPORT_CHUNK } from '../../reconciler/surveys/send.ts';
import {
  DAY,
  DIRECTORY_ID,
  SURVEY,
  applyAt,
  at,
  batchPeople,
  listIdOf,
  makeSurveyProject,
  seedQualtrics,
  surveyEnv,
  syncAt,
  type TargetOptions,
} from '../support/survey-fixture.ts';
import { REPO, removeProject } from '../support/sync-fixture.ts';

const people = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 50_000);
const NOW = '2027-01-12T15:00:00.000Z';
const log = (s: string) => process.stderr.write(`${s}\n`);
const seconds = (ms: number) => (ms / 1000).toFixed(2);

const target: TargetOptions = { name: 'export', survey: SURVEY.delivery, audience: 'recent_buyers', after: '2d', before: '5d', response_window: '72h' };
const ids = Array.from({ length: people }, (_, i) => `cust_${(((i + 1) * 2654435761) % 2 ** 32).toString(16).padStart(8, '0')}`);

const sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, seed: 50 });
const { dir } = await makeSurveyProject({
  people: ids.map((id, i) => ({ id, email: `${id}@example.com`, order_count: 1 + (i % 7), accepts_marketing: i % 2 === 0, last_order_at: at(NOW, -3 * DAY), favourite_blend: `blend ${i % 13}` })),
  deliveries: ids.map((id) => ({ order_id: `${id}-1`, customer_id: id, delivered_at: at(NOW, -3 * DAY) })),
  targets: [target],
});
try {
  seedQualtrics(sandbox, [target]);
  let t = performance.now();
  await applyAt(dir, sandbox, NOW);
  await syncAt(dir, sandbox, NOW);
  const setupMs = performance.now() - t;
  log(`setup (apply, sync ${people} people and ${people} deliveries): ${seconds(setupMs)} s`);

  sandbox.resetRequestCounts();
  t = performance.now();
  // When each route was first and last seen during the run (sampled every 100 ms): where the time went.
  const seen = new Map<string, { first: number; last: number; n: number }>();
  const sample = setInterval(() => {
    const ms = performance.now() - t;
    for (const [route, n] of Object.entries(sandbox.requestCounts())) {
      const s = seen.get(route);
      if (!s) seen.set(route, { first: ms, last: ms, n });
      else if (n > s.n) Object.assign(s, { last: ms, n });
    }
  }, 100);
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO, 'bin/tidemark.js'), 'surveys', 'run', '--format', 'json', '--now', NOW], {
      cwd: dir,
      env: { PATH: process.env.PATH, ...surveyEnv(sandbox), QUALTRICS_RATE_PER_MINUTE: '3000', TIDEMARK_REPORT_RSS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  const runMs = performance.now() - t;
  clearInterval(sample);
  const rss = Number(/peak-rss-bytes=(\d+)/.exec(run.stderr)?.[1] ?? NaN);
  if (run.code !== 0) {
    log(run.stdout + run.stderr);
    throw new Error(`surveys run exited ${run.code}`);
  }
  const result = JSON.parse(run.stdout) as { targets: Array<{ status: string; send?: { invited: number; failed: number } }> };

  const counts = Object.entries(sandbox.requestCounts()).sort(([a], [b]) => a.localeCompare(b));
  const qualtrics = counts.filter(([route]) => route.includes('/API/v3/'));
  const count = (route: string) => sandbox.requestCounts()[route] ?? 0;
  const imports = count('POST /API/v3/directories/{id}/mailinglists/{id}/transactioncontacts');
  const distributions = count('POST /API/v3/distributions');
  const perContact = qualtrics.filter(([route]) => /\/contacts(\/\{id\})?$/.test(route) && !route.startsWith('GET ')).reduce((n, [, c]) => n + c, 0);
  const listContacts = sandbox.qualtrics.contacts(listIdOf(sandbox, 'export'));
  const batches = [...batchPeople(sandbox, sandbox.qualtrics.distributions().map((d) => d.recipients.transactionBatchId ?? '')).values()];
  const inBatch = batches.reduce((n, b) => n + b.length, 0);
  const distinct = new Set(batches.flat()).size;

  process.stdout.write(`Survey export: ${people.toLocaleString('en-US')} contacts, one target, \`tidemark surveys run\` as its own process against the in-process sandbox\n\n`);
  process.stdout.write(`| measure | value |\n|---|---:|\n`);
  process.stdout.write(`| setup: apply + sync of both sources (in process, not the subject) | ${seconds(setupMs)} s |\n`);
  process.stdout.write(`| \`surveys run\`: wall time (process start to exit) | ${seconds(runMs)} s |\n`);
  process.stdout.write(`| \`surveys run\`: peak RSS | ${(rss / 2 ** 20).toFixed(0)} MiB |\n`);
  process.stdout.write(`| invited (recorded) / failed rows | ${result.targets[0]?.send?.invited ?? 0} / ${result.targets[0]?.send?.failed ?? 0} |\n`);
  process.stdout.write(`| Qualtrics: contacts in the list / transactions in the batch / distinct people | ${listContacts.length} / ${inBatch} / ${distinct} |\n`);
  process.stdout.write(`| Qualtrics requests in all / per contact | ${qualtrics.reduce((n, [, c]) => n + c, 0)} / ${perContact} |\n\n`);
  process.stdout.write(`| route (sandbox request counts during \`surveys run\`) | requests | first seen (s) | last seen (s) |\n|---|---:|---:|---:|\n`);
  for (const [route, c] of counts) {
    const s = seen.get(route);
    process.stdout.write(`| \`${route}\` | ${c} | ${s ? seconds(s.first) : ''} | ${s ? seconds(s.last) : ''} |\n`);
  }

  const expectedImports = Math.ceil(people / IMPORT_CHUNK);
  const problems = [
    imports !== expectedImports && `${imports} import requests, expected ${expectedImports} (${IMPORT_CHUNK} contacts each)`,
    distributions !== 1 && `${distributions} distributions created, expected 1`,
    perContact !== 0 && `${perContact} per-contact requests`,
    (listContacts.length !== people || inBatch !== people || distinct !== people) && `Qualtrics holds ${listContacts.length} contacts, ${inBatch} transactions, ${distinct} distinct people; expected ${people} each`,
    sandbox.qualtrics.directoryContacts(DIRECTORY_ID).length !== people && `the directory holds ${sandbox.qualtrics.directoryContacts(DIRECTORY_ID).length} contacts`,
  ].filter(Boolean);
  if (problems.length) {
    process.stdout.write(`\nUNEXPECTED: ${problems.join('; ')}\n`);
    process.exitCode = 1;
  }
} finally {
  await sandbox.close();
  await removeProject(dir);
}
