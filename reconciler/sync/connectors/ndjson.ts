/**
 * Newline-delimited JSON, streamed line by line (readline over a read stream): one JSON object per line,
 * LF or CRLF, a UTF-8 byte-order mark stripped, blank lines skipped. A line that is not JSON, or is JSON
 * but not an object, becomes a row carrying `__error` (see rows.ts) and the read goes on. Locations are
 * `path:line`, 1-based, counting blank lines too so they match an editor.
 *
 * JSON numbers beyond 2^53 are already rounded by JSON.parse; the normaliser refuses such ids rather
 * than send a wrong one, so exporters should write large ids as strings.
 */
import { createInterface } from 'node:readline';
import type { SourceSpec } from '../../spec/schema/index.ts';
import type { Connector, ConnectorContext, SourceRow } from '../types.ts';
import { ConnectorError } from './errors.ts';
import { closeStream, openSourceFile } from './files.ts';
import { errorRow } from './rows.ts';

type NdjsonSpec = Extract<SourceSpec['connector'], { type: 'ndjson' }>;

/** Streams an NDJSON file as rows. */
export function createNdjsonConnector(spec: NdjsonSpec): Connector {
  return {
    type: 'ndjson',
    read: (ctx: ConnectorContext) => readNdjson(spec.path, ctx),
  };
}

async function* readNdjson(specPath: string, ctx: ConnectorContext): AsyncGenerator<SourceRow> {
  ctx.signal?.throwIfAborted();
  const handle = await openSourceFile('ndjson', specPath, ctx.cwd);
  const input = handle.createReadStream({ encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const raw of lines) {
      ctx.signal?.throwIfAborted();
      n++;
      const text = n === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
      if (text.trim() === '') continue;
      const location = `${specPath}:${n}`;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        // V8's message quotes the offending text, which may be an email address: say only what is wrong.
        yield errorRow(location, 'Malformed NDJSON line: not valid JSON.');
        continue;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
        yield errorRow(location, `Malformed NDJSON line: expected a JSON object, got ${kind}.`);
        continue;
      }
      yield { location, values: value as Record<string, unknown> };
    }
  } catch (e) {
    if (e instanceof ConnectorError || (e instanceof Error && e.name === 'AbortError')) throw e;
    throw new ConnectorError('ndjson', 'io', `Reading ${specPath} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  } finally {
    lines.close();
    await closeStream(input);
  }
}
