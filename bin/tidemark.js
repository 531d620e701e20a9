#!/usr/bin/env node
// The CLI is TypeScript. It runs from its sources compiled once and cached (bin/compiled.js: used only
// while every source file is unchanged), or through tsx when that cannot be; either way a fresh clone works
// after `npm ci` with no build step, and nothing compiled can drift from the source.
import { compiledCli } from './compiled.js';

const compiled = await compiledCli();
if (compiled.main === undefined && process.env.TIDEMARK_DEBUG === '1') {
  process.stderr.write(`tidemark: running the sources through tsx (${compiled.reason})\n`);
}
const { main, describeFailure } = compiled.main ?? (await sourceCli());
// Last resort for an error thrown outside any command's await chain (an 'error' event nobody listened
// to, a rejected promise nobody awaited): the same short paragraph as any other failure, not a crash dump.
const lastResort = (err) => {
  process.stderr.write(describeFailure('tidemark', err, process.env));
  process.exit(1);
};
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);
process.exitCode = await main(process.argv.slice(2));
if (process.env.TIDEMARK_REPORT_RSS === '1') {
  // For benchmarks: the peak resident set size of this process (maxRSS is in kilobytes), and the CPU time
  // of all its threads (microseconds), user and system.
  const usage = process.resourceUsage();
  process.stderr.write(`peak-rss-bytes=${usage.maxRSS * 1024}\ncpu-microseconds=${usage.userCPUTime},${usage.systemCPUTime}\n`);
}

async function sourceCli() {
  const { register } = await import('tsx/esm/api');
  register();
  return import('../reconciler/cli/main.ts');
}
