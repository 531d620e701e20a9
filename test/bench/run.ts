/**
 * Runs every `test/bench/*.bench.ts` one after the other (never in parallel: they would measure each
 * other) and prints their results together at the end, as markdown.
 *
 *   npm run bench [-- NAME...]        e.g. `npm run bench -- sync` runs only sync.bench.ts
 *
 * Each benchmark runs in its own process with its default size. Its progress (stderr) is shown live; its
 * report (stdout) is collected: markdown table lines are kept as they are, other output goes into a text
 * block. Exits 1 when any benchmark exits non-zero (a benchmark flags results it did not expect that way).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = import.meta.dirname;
const filters = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((n) => f.includes(n)))
  .sort();
if (benches.length === 0) {
  process.stderr.write(`no benchmark matches ${filters.join(', ')}\n`);
  process.exit(1);
}

interface Outcome {
  name: string;
  status: number | null;
  seconds: number;
  stdout: string;
}

function runOne(file: string): Promise<Outcome> {
  const name = file.replace(/\.bench\.ts$/, '');
  process.stderr.write(`\n=== ${name} ===\n`);
  const started = performance.now();
  return new Promise((resolve) => {
    // `--import tsx` rather than the tsx binary: one process per benchmark, so its peak RSS is its own.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, file)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.on('close', (status) => resolve({ name, status, seconds: (performance.now() - started) / 1000, stdout }));
  });
}

/** Table lines pass through; runs of other lines become fenced text blocks. */
function asMarkdown(stdout: string): string {
  const blocks: string[] = [];
  let table: string[] = [];
  let text: string[] = [];
  const flush = () => {
    if (table.length) blocks.push(table.join('\n'));
    const trimmed = text.join('\n').trim();
    if (trimmed) blocks.push(`\`\`\`text\n${trimmed}\n\`\`\``);
    table = [];
    text = [];
  };
  for (const line of stdout.split('\n')) {
    const isTable = line.startsWith('|');
    if (isTable ? text.length > 0 : table.length > 0) flush();
    (isTable ? table : text).push(line);
  }
  flush();
  return blocks.join('\n\n');
}

const outcomes: Outcome[] = [];
for (const file of benches) outcomes.push(await runOne(file));

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const sections = outcomes.map(
  (o) => `## ${o.name} (${o.seconds.toFixed(0)} s${o.status === 0 ? '' : `, exit ${o.status}`})\n\n${asMarkdown(o.stdout)}\n`,
);
process.stdout.write(
  `\n# Benchmarks\n\n${os.cpus().length} CPUs (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}\n\n${sections.join('\n')}`,
);
process.exitCode = outcomes.some((o) => o.status !== 0) ? 1 : 0;
