#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so a fresh clone works after `npm ci` with no build step
// and no compiled copy that could drift from the source.
import { register } from 'tsx/esm/api';

register();
const { main, describeFailure } = await import('../reconciler/cli/main.ts');
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
  // For benchmarks: the peak resident set size of this process (maxRSS is in kilobytes).
  process.stderr.write(`peak-rss-bytes=${process.resourceUsage().maxRSS * 1024}\n`);
}
