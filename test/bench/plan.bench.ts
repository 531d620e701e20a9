/**
 * Plan benchmark (issue: "plan for 5,000 managed segments and mailing lists against the sandbox, cold and
 * no-change"). A sandbox runs in this process as the remote services; tidemark runs as a separate CLI
 * process talking to it over HTTP, the way it talks to Customer.io and Qualtrics.
 *
 *   npx tsx test/bench/plan.bench.ts [objects=5000]
 *
 * Steps: generate specs declaring N/2 published segments and N/2 survey targets (one mailing list each);
 * `plan` with nothing managed; `apply` (N creates, limits raised so the setup does not take minutes);
 * then `plan --detailed-exitcode` in a fresh process (cold) and once more (no-change, warm disk cache).
 * Prints wall time, peak RSS of the tidemark process and the API requests each step made.
 * A measurement, not a test: nothing is asserted.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSandbox } from '../../reconciler/sandbox/index.ts';

const objects = Number(process.argv[2] ?? 5000);
const half = Math.floor(objects / 2);
const repo = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-plan-'));
const directory = 'POOL_bench000000001';

function specs(): void {
  mkdirSync(path.join(dir, 'specs'), { recursive: true });
  writeFileSync(path.join(dir, 'specs/workspace.yaml'), `kind: Workspace
name: bench
identity: { primary: id }
environments:
  staging:
    customerio: { region: us }
    qualtrics: { datacenter: iad1, directory_id: ${directory} }
surveys: { frequency_cap: { max: 1, per: 30d } }
---
kind: Fields
name: f
fields:
  tier: { type: string, owner: crm }
  reason: { type: string, owner: qualtrics }
events:
  order_delivered: { owner: crm, stage: delivery }
`.replace('owner: crm', 'owner: tidemark').replace('owner: crm', 'owner: tidemark'));
  const segs: string[] = [];
  for (let i = 0; i < half; i++) {
    segs.push(`kind: Segment\nname: seg_${i}\nconditions: { attribute: { field: tier, op: eq, value: t${i} } }\npublish: { customerio_segment: true }\n`);
  }
  writeFileSync(path.join(dir, 'specs/segments.yaml'), segs.join('---\n'));
  const targets: string[] = [];
  for (let i = 0; i < objects - half; i++) {
    targets.push(`kind: SurveyTarget
name: survey_${i}
survey: SV_bench${String(i).padStart(9, '0')}
purpose: nps
audience: seg_${i % half}
moment: { event: order_delivered, after: 3d, before: 5d }
identifier: id
mailing_list: { name: "bench list ${i}" }
holdout: 10%
response_window: 72h
responses: { question: QID1, reason_codes: { "1": a }, write: { attribute: reason } }
`);
  }
  writeFileSync(path.join(dir, 'specs/surveys.yaml'), targets.join('---\n'));
}

function totalRequests(counts: Record<string, number>): number {
  return Object.entries(counts).filter(([k]) => !k.includes('__sandbox')).reduce((n, [, v]) => n + v, 0);
}

async function main() {
  specs();
  const sandbox = await createSandbox({ port: 0, retryAfterSeconds: 0, appRateLimitPerSecond: 1_000_000, qualtricsRateLimitPerMinute: 1_000_000_000 });
  sandbox.qualtrics.seedDirectory({ directoryId: directory, name: 'bench' });
  const env = {
    ...process.env,
    ...sandbox.env,
    CUSTOMERIO_APP_RATE_PER_SECOND: '100000',
    QUALTRICS_RATE_PER_MINUTE: '100000000',
    NO_COLOR: '1',
  };
  const rows: string[] = [];
  const step = async (label: string, args: string[]) => {
    sandbox.resetRequestCounts();
    const t0 = performance.now();
    // The sandbox answers in this process, so the CLI must run asynchronously beside it.
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(repo, 'bin/tidemark.js'), ...args], { cwd: dir, env: { ...env, TIDEMARK_REPORT_RSS: '1' } });
      let stderr = '';
      let stdout = '';
      child.stdout.on('data', (d) => (stdout = (stdout + String(d)).slice(-4000)));
      child.stderr.on('data', (d) => (stderr += String(d)));
      child.on('close', (status) => resolve({ status, stderr: `${stderr}\n${stdout}` }));
    });
    const ms = performance.now() - t0;
    const rss = /peak-rss-bytes=(\d+)/.exec(String(r.stderr))?.[1];
    const requests = totalRequests(sandbox.requestCounts());
    rows.push(`| ${label} | ${(ms / 1000).toFixed(2)} s | ${rss ? `${Math.round(Number(rss) / 1e6)} MB` : 'n/a'} | ${requests} | exit ${r.status} |`);
    process.stderr.write(`${rows[rows.length - 1]}\n`);
    if (r.status !== 0 && (r.status !== 2 || label.includes('no changes'))) process.stderr.write(String(r.stderr).slice(-3000));
  };
  await step('validate (no API)', ['validate']);
  rows.length = 0;
  await step(`plan, nothing managed (${objects} to create)`, ['plan', '--format', 'json']);
  await step(`apply (${objects} creates)`, ['apply', '--auto-approve']);
  await step(`plan, ${objects} managed, cold process, no changes`, ['plan', '--detailed-exitcode']);
  await step(`plan, ${objects} managed, no changes (again)`, ['plan', '--detailed-exitcode']);
  await sandbox.close();
  process.stdout.write(`\n| step | wall time | peak RSS (tidemark) | API requests | result |\n|---|---|---|---|---|\n${rows.join('\n')}\n`);
  rmSync(dir, { recursive: true, force: true });
}

await main();
