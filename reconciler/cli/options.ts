/**
 * Each command declares its options once, here shaped: the parser reads these definitions and `--help`
 * lists them, so a flag cannot be accepted without being documented, nor documented without being
 * accepted (test/cli/help.test.ts walks every command and subcommand).
 */
import { parseArgs } from 'node:util';
import { UsageError } from './command.ts';

export interface OptionDef {
  type: 'string' | 'boolean';
  /** Repeatable: every occurrence is kept. */
  multiple?: boolean;
  default?: string;
  /** The value's name in `--help` (`--env E`); string options only. */
  value?: string;
  /** The values the parser accepts (the error names them); listed as the value in `--help`. */
  choices?: readonly string[];
  /** The subcommands that take this option; absent: all of them. */
  only?: readonly string[];
  /** One line for `--help`. */
  description: string;
}

export type OptionDefs = Record<string, OptionDef>;

/** `--format`, with the formats a command writes; text is the default. */
export function formatOption<const C extends readonly string[]>(choices: C, description?: string) {
  return {
    type: 'string',
    default: 'text',
    choices,
    description: description ?? `output: ${choices.map((c) => (c === 'text' ? 'text (default)' : c)).join(', ')}`,
  } as const satisfies OptionDef;
}

/** What a command parses: its options and, for `sync plan|run` and the like, its subcommands. */
export interface CommandLine {
  /** `sync`, as in `tidemark sync`. */
  command: string;
  options: OptionDefs;
  /** The subcommand words, in the order `--help` names them; an option's `only` refers to these. */
  subcommands?: readonly string[];
  /** Whether bare arguments (files, addresses, sources) are taken besides a subcommand. */
  positionals?: boolean;
}

type ValueOf<D extends OptionDef> = D['type'] extends 'boolean' ? (D['multiple'] extends true ? boolean[] : boolean) : D['multiple'] extends true ? string[] : string;

export type OptionValues<T extends OptionDefs> = { -readonly [K in keyof T]?: ValueOf<T[K]> };

export interface ParsedLine<T extends OptionDefs> {
  values: OptionValues<T>;
  positionals: string[];
}

/**
 * Parses `args` strictly against the definitions. Options are checked in the order given, so the first
 * one that is not an option of this command (or of this subcommand, the first positional) is the one named.
 */
export function parseCommandLine<T extends OptionDefs>(line: CommandLine & { options: T }, args: string[]): ParsedLine<T> {
  const options = nodeOptions(line.options);
  const where = `tidemark ${line.command}`;
  const loose = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  const sub = loose.tokens.find((t) => t.kind === 'positional')?.value;
  for (const t of loose.tokens) {
    if (t.kind !== 'option') continue;
    const def = line.options[t.name];
    if (!def) throw new UsageError(`Unknown option '${t.rawName}'`);
    if (def.only && sub !== undefined && line.subcommands?.includes(sub) && !def.only.includes(sub)) {
      throw new UsageError(`${t.rawName} is not an option of \`${where} ${sub}\` (only of ${def.only.map((s) => `${where} ${s}`).join(', ')})`);
    }
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: !!(line.positionals || line.subcommands) });
  } catch (err) {
    if (err instanceof Error && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw new UsageError(oneLine(err.message));
    throw err;
  }
  for (const [name, def] of Object.entries(line.options)) {
    const v = (parsed.values as Record<string, unknown>)[name];
    if (!def.choices || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      if (!def.choices.includes(String(one))) throw new UsageError(`--${name} must be ${orList(def.choices)} (got "${one}")`);
    }
  }
  return { values: parsed.values as OptionValues<T>, positionals: parsed.positionals };
}

/** node's messages add advice about `--` separators that does not apply to these commands; one line. */
export function oneLine(message: string): string {
  return message.split(/\. (To specify|This command)/)[0]!.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
}

function orList(xs: readonly string[]): string {
  return xs.length <= 2 ? xs.join(' or ') : `${xs.slice(0, -1).join(', ')} or ${xs.at(-1)}`;
}

function nodeOptions(defs: OptionDefs) {
  const out: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; default?: string }> = {};
  for (const [name, d] of Object.entries(defs)) {
    out[name] = { type: d.type, ...(d.multiple ? { multiple: true } : {}), ...(d.default !== undefined ? { default: d.default } : {}) };
  }
  return out;
}

/** How one option reads in `--help`: `--format text|json`, `--target ADDRESS`. */
export function optionLabel(name: string, d: OptionDef): string {
  if (d.type === 'boolean') return `--${name}`;
  return `--${name} ${d.choices ? d.choices.join('|') : (d.value ?? 'VALUE')}`;
}

const HELP_WIDTH = 100;

/** The `Options:` block: one entry per definition, its description wrapped under it when long. */
export function renderOptions(line: CommandLine): string {
  const entries: Array<[string, string]> = Object.entries(line.options).map(([name, d]) => {
    const notes: string[] = [];
    if (d.multiple) notes.push('repeatable');
    if (d.only && line.subcommands && d.only.length < line.subcommands.length) notes.push(`${d.only.join(', ')} only`);
    return [optionLabel(name, d), `${d.description}${notes.length ? ` (${notes.join('; ')})` : ''}`];
  });
  entries.push(['-h, --help', 'show this help']);
  const width = Math.min(24, Math.max(...entries.map(([l]) => l.length)) + 2);
  const out: string[] = ['Options:'];
  for (const [label, text] of entries) {
    const indent = 2 + width;
    const words = wrap(text, HELP_WIDTH - indent);
    if (label.length + 2 > width) {
      out.push(`  ${label}`);
      for (const w of words) out.push(`${' '.repeat(indent)}${w}`);
    } else {
      out.push(`  ${label.padEnd(width)}${words[0] ?? ''}`);
      for (const w of words.slice(1)) out.push(`${' '.repeat(indent)}${w}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/)) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) lines.push(current);
  return lines;
}

/**
 * The whole `tidemark X --help`: the usage lines, the command's own explanation, the options rendered from
 * the definitions, then anything that reads best after them (exit codes, a subcommand's own usage).
 */
export function renderUsage(line: CommandLine, text: { synopsis: readonly string[]; intro?: string; after?: string }): string {
  const usage = text.synopsis.map((s, i) => `${i === 0 ? 'Usage: ' : '       '}tidemark ${s}`).join('\n');
  const parts = [`${usage}\n`];
  if (text.intro) parts.push(`${text.intro.trimEnd()}\n`);
  parts.push(renderOptions(line));
  if (text.after) parts.push(`${text.after.trimEnd()}\n`);
  return parts.join('\n');
}
