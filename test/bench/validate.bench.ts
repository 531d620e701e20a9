/**
 * Validation of large spec sets (issue 8: "1,500 segments in one exclusive group, 50,000 unknown keys and
 * 20,000 documents each validate in seconds"). Each case writes its specs to a temp folder and runs
 * `tidemark validate --specs DIR` (the CLI's main(), text output) in its own child process, so its time
 * includes reading and parsing and its peak RSS is its own. Prints wall time, peak RSS and the bytes
 * printed. A measurement, not a test: nothing is asserted (test/spec/large-inputs.test.ts checks the output).
 *
 *   npx tsx test/bench/validate.bench.ts [--runs=3] [--only=CASE]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { disjointGroup, manyDocuments, overlappingGroup, unknownKeys } from '../support/spec-large-inputs.ts';

const CASES = {
  'exclusive group, 1,500 overlapping segments': () => overlappingGroup(1500),
  'exclusive group, 1,500 segments keyed on one field': () => disjointGroup(1500),
  '50,000 unknown keys': () => unknownKeys(50_000),
  '20,000 documents': () => manyDocuments(20_000),
} as const;
type CaseName = keyof typeof CASES;

interface Measured {
  ms: number;
  maxRssKb: number;
  bytes: number;
  lines: number;
  exit: number;
}

const args = process.argv.slice(2);
const child = args.find((a) => a.startsWith('--child='))?.slice('--child='.length) as CaseName | undefined;

if (child) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tidemark-bench-validate-'));
  try {
    mkdirSync(path.join(dir, 'specs'));
    for (const f of CASES[child]()) writeFileSync(path.join(dir, f.path), f.text);
    const { main } = await import('../../reconciler/cli/main.ts');
    let bytes = 0;
    let lines = 0;
    const stdout = new Writable({
      write(chunk, _enc, cb) {
        const s = String(chunk);
        bytes += Buffer.byteLength(s);
        for (const ch of s) if (ch === '\n') lines++;
        cb();
      },
    });
    const stderr = new Writable({ write: (_c, _e, cb) => cb() });
    const t = performance.now();
    const exit = await main(['validate', '--specs', 'specs'], { cwd: dir, env: { NO_COLOR: '1' }, stdout, stderr });
    const ms = performance.now() - t;
    const m: Measured = { ms, maxRssKb: process.resourceUsage().maxRSS, bytes, lines, exit };
    process.stdout.write(JSON.stringify(m));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice('--runs='.length) ?? 1);
  const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  const names = (Object.keys(CASES) as CaseName[]).filter((n) => !only || n.includes(only));
  const measure = (name: CaseName) =>
    new Promise<Measured>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, `--child=${name}`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => (out += String(d)));
      p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Measured) : reject(new Error(`${name}: child exited ${code}`))));
    });
  const rows: string[] = [];
  for (const name of names) {
    const got: Measured[] = [];
    for (let r = 0; r < runs; r++) {
      process.stderr.write(`${name}, run ${r + 1}/${runs}… `);
      got.push(await measure(name));
      process.stderr.write(`${(got.at(-1)!.ms / 1000).toFixed(2)} s\n`);
    }
    const ms = [...got.map((g) => g.ms)].sort((a, b) => a - b)[Math.floor((got.length - 1) / 2)]!;
    const last = got.at(-1)!;
    const lines = `${last.lines.toLocaleString('en-US')} line${last.lines === 1 ? '' : 's'}`;
    rows.push(
      `| ${name} | ${(ms / 1000).toFixed(2)} s | ${Math.round(Math.max(...got.map((g) => g.maxRssKb)) / 1024)} MB | ${lines}, ${Math.round(last.bytes / 1024).toLocaleString('en-US')} KB | ${last.exit} |`,
    );
  }
  console.log(`tidemark validate on generated specs, ${runs} run(s) per case (median), node ${process.version}, ${os.cpus().length} CPUs`);
  console.log('');
  console.log('| case | wall time | peak RSS | output | exit |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}
