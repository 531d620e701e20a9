/**
 * Every command's `--help` lists every option its parser accepts, and its parser accepts every option
 * its `--help` lists, per subcommand: walked through `main`, the same entry the bin runs. An option added
 * without a description, or parsed outside the definitions, fails here.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { commands } from '../../reconciler/cli/commands/index.ts';
import { runCli } from '../support/cli-run.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const UNKNOWN = '--no-such-flag-h3';

interface HelpEntry {
  flag: string;
  /** The label and description, continuation lines joined. */
  text: string;
  /** The subcommands it is listed for (`(run only)`); undefined: all. */
  only?: string[];
}

/** The `Options:` block of a help text, one entry per option. */
function helpOptions(help: string): HelpEntry[] {
  const block = /\nOptions:\n((?: {2}.*\n)+)/.exec(help)?.[1];
  if (!block) return [];
  const entries: HelpEntry[] = [];
  for (const line of block.split('\n').filter(Boolean)) {
    const head = /^ {2}(?:-h, )?(--[a-z][a-z-]*)(?: [^ ]+)?(?: {2,}(.*))?$/.exec(line);
    if (head) entries.push({ flag: head[1]!, text: (head[2] ?? '').trim() });
    else entries.at(-1)!.text = `${entries.at(-1)!.text} ${line.trim()}`.trim();
  }
  for (const e of entries) {
    const only = /(?:\(|; )([a-z, -]+) only\)$/.exec(e.text);
    if (only) e.only = only[1]!.split(', ');
  }
  return entries;
}

/** Subcommands named in the usage lines: `tidemark sync plan SOURCE …` → plan. */
function subcommandsOf(name: string, help: string): string[] {
  const usage = help.slice(0, help.indexOf('\n\n'));
  return [...new Set([...usage.matchAll(new RegExp(`tidemark ${name} ([a-z][a-z-]*)\\b`, 'g'))].map((m) => m[1]!))];
}

const loaded = await Promise.all(commands.map(async (entry) => ({ entry, command: await entry.load() })));
const helps = new Map<string, string>();
for (const { entry } of loaded) {
  const r = await runCli([entry.name, '--help'], { cwd: REPO, env: { NO_COLOR: '1' } });
  helps.set(entry.name, r.stdout);
}
/** Every option some command declares: the candidates each parser is probed with. */
const everyFlag = [...new Set([...helps.values()].flatMap((h) => helpOptions(h).map((e) => e.flag)))].filter((f) => f !== '--help');

describe('--help', () => {
  it.each(commands.map((c) => c.name))('tidemark %s --help lists each declared option once, with a description', (name) => {
    const { command } = loaded.find((l) => l.entry.name === name)!;
    const help = helps.get(name)!;
    expect(help).toMatch(new RegExp(`^Usage: tidemark ${name}`));
    const listed = helpOptions(help);
    expect(listed.map((e) => e.flag).sort()).toEqual([...Object.keys(command.line.options).map((o) => `--${o}`), '--help'].sort());
    for (const e of listed) expect(e.text.length, `${name} ${e.flag} has no description`).toBeGreaterThan(3);
    for (const [o, def] of Object.entries(command.line.options)) expect(def.description.trim(), `${name} --${o}`).not.toBe('');
  });

  it('apply and start list their options (they listed none before)', () => {
    for (const flag of ['--auto-approve', '--allow-delete', '--adopt-by-name', '--target', '--format', '--env', '--specs', '--sandbox', '--now']) {
      expect(helpOptions(helps.get('apply')!).map((e) => e.flag)).toContain(flag);
    }
    for (const flag of ['--auto-approve', '--allow-delete', '--people', '--seed', '--format', '--env', '--now']) {
      expect(helpOptions(helps.get('start')!).map((e) => e.flag)).toContain(flag);
    }
  });

  it('each subcommand named in a usage line is one the command declares', () => {
    for (const { entry, command } of loaded) {
      const named = subcommandsOf(entry.name, helps.get(entry.name)!);
      expect(named, entry.name).toEqual([...(command.line.subcommands ?? [])]);
    }
  });
});

describe('the parser each command runs', () => {
  // A probe: the option (with a value when it takes one), then an unknown flag. Options are checked in
  // order, so the error names the probed option when the parser refuses it, and the unknown one otherwise.
  async function refusedFlag(name: string, sub: string[], flag: string): Promise<string> {
    const help = helps.get(name)!;
    const entry = helpOptions(help).find((e) => e.flag === flag);
    const takesValue = entry ? new RegExp(`\\n {2}${flag} [^ \\n]`).test(help) : false;
    const value = entry && takesValue ? [/--format/.test(flag) ? 'text' : 'x'] : [];
    const r = await runCli([name, ...sub, flag, ...value, UNKNOWN], { cwd: REPO, env: { NO_COLOR: '1' } });
    expect(r.code, `${name} ${sub.join(' ')} ${flag}: ${r.stderr}`).toBe(1);
    expect(r.stdout).toBe('');
    // One line: the flag and where the options are listed.
    expect(r.stderr).toMatch(new RegExp(`^tidemark ${name}: [^\\n]*; see \`tidemark ${name} --help\`\\n$`));
    return /'(--[a-z-0-9]+)'|^tidemark [a-z]+: (--[a-z-0-9]+) is not an option/.exec(r.stderr)?.slice(1).find(Boolean) ?? r.stderr;
  }

  it.each(commands.map((c) => c.name))('tidemark %s accepts exactly the options its --help lists, per subcommand', async (name) => {
    const help = helps.get(name)!;
    const listed = helpOptions(help);
    const subs = subcommandsOf(name, help);
    for (const sub of subs.length ? subs : ['']) {
      const args = sub ? [sub] : [];
      for (const flag of everyFlag) {
        const entry = listed.find((e) => e.flag === flag);
        const accepted = !!entry && (!entry.only || entry.only.includes(sub));
        const named = await refusedFlag(name, args, flag);
        expect(named, `tidemark ${name} ${sub} ${flag}: ${accepted ? 'listed, so it must be accepted' : 'not listed, so it must be refused'}`).toBe(accepted ? UNKNOWN : flag);
      }
    }
  });

  it('no command parses its arguments outside the definitions --help is rendered from', () => {
    const dir = path.join(REPO, 'reconciler/cli');
    const files = [...readdirSync(dir).map((f) => path.join(dir, f)), ...readdirSync(path.join(dir, 'commands')).map((f) => path.join(dir, 'commands', f))].filter((f) => f.endsWith('.ts'));
    const raw = files.filter((f) => !f.endsWith('options.ts') && /\bparseArgs\s*\(/.test(readFileSync(f, 'utf8')));
    expect(raw.map((f) => path.relative(REPO, f))).toEqual([]);
  });
});

describe('a usage error, from the installed bin', () => {
  it('is one line naming the flag and the command --help, exit 1, nothing on stdout', async () => {
    const run = promisify(execFile);
    const r = await run(process.execPath, [path.join(REPO, 'bin/tidemark.js'), 'sync', 'run', '--frmat', 'json'], { cwd: REPO, env: { PATH: process.env.PATH } }).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("tidemark sync: Unknown option '--frmat'; see `tidemark sync --help`\n");
  });

  it('an option of another subcommand says whose it is', async () => {
    const r = await runCli(['sync', 'plan', 'shopify_orders', '--due'], { cwd: REPO });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('tidemark sync: --due is not an option of `tidemark sync plan` (only of tidemark sync run); see `tidemark sync --help`\n');
  });
});
