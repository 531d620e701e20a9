import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateJsonSchemas } from '../../spec/json-schema.ts';
import type { Command } from '../command.ts';
import { parseCommandLine, renderUsage, type CommandLine } from '../options.ts';

const line = {
  command: 'schema',
  options: {
    write: { type: 'boolean', description: 'write them to DIR (default specs/schema)' },
    check: { type: 'boolean', description: 'exit 1 if the files in DIR are missing or stale' },
    out: { type: 'string', value: 'DIR', description: 'target folder (default specs/schema)' },
  },
} as const satisfies CommandLine;

export const schemaCommand: Command = {
  name: 'schema',
  summary: 'Write (or check) the JSON Schemas in specs/schema/ generated from the spec model',
  line,
  usage: renderUsage(line, {
    synopsis: ['schema [--write | --check] [--out DIR]'],
    intro: `Generates the JSON Schemas editors use to complete and check specs (yaml-language-server).
Without --write or --check, prints the combined schema.`,
  }),
  async run(args, ctx) {
    const { values } = parseCommandLine(line, args);
    const dir = path.resolve(ctx.cwd, values.out ?? 'specs/schema');
    const schemas = generateJsonSchemas();
    if (values.check) {
      const stale: string[] = [];
      for (const [file, text] of schemas) {
        const current = await readFile(path.join(dir, file), 'utf8').catch(() => undefined);
        if (current !== text) stale.push(file);
      }
      if (stale.length) {
        ctx.stderr.write(`Stale or missing JSON Schemas: ${stale.join(', ')}. Run \`npm run schemas\`.\n`);
        return 1;
      }
      ctx.stdout.write(`JSON Schemas are up to date (${schemas.size} files).\n`);
      return 0;
    }
    if (values.write) {
      await mkdir(dir, { recursive: true });
      for (const [file, text] of schemas) await writeFile(path.join(dir, file), text);
      ctx.stdout.write(`Wrote ${schemas.size} JSON Schemas to ${path.relative(ctx.cwd, dir) || '.'}.\n`);
      return 0;
    }
    ctx.stdout.write(schemas.get('tidemark.json')!);
    return 0;
  },
};
