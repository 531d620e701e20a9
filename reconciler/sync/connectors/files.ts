/**
 * What the connectors share: resolving and opening a source file, closing a stream on every exit path,
 * and deriving `read` from `readBatches` (each connector has one implementation, batched).
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { SourceRow } from '../types.ts';
import { ConnectorError } from './errors.ts';

/** Opens a spec path (relative to the specs folder) for reading, with an error that names both paths. */
export async function openSourceFile(connector: string, specPath: string, cwd: string): Promise<FileHandle> {
  const abs = path.resolve(cwd, specPath);
  try {
    return await open(abs, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : code === 'EISDIR' ? 'is a directory' : `cannot be opened (${code ?? 'unknown error'})`;
    throw new ConnectorError(connector, 'not_found', `The ${connector} file ${specPath} ${what} (looked for ${abs}).`, { cause: e });
  }
}

/**
 * Destroys a stream and waits until its file descriptor is closed, so that when a consumer's early
 * `return()` resolves, the file is really released (not merely scheduled to be).
 */
export async function closeStream(stream: Readable): Promise<void> {
  if (stream.closed) return;
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve());
    stream.destroy();
  });
}

/**
 * The rows of `batches` one by one. A signal, when given, is checked before every row, so an abort takes
 * effect at the next row even when a batch holds thousands (the file connectors' contract). Stopping
 * early returns the batch iterator, which releases the connector's resources.
 */
export async function* rowsOf(batches: AsyncIterable<SourceRow[]>, signal: AbortSignal | undefined): AsyncGenerator<SourceRow> {
  for await (const batch of batches) {
    for (const row of batch) {
      signal?.throwIfAborted();
      yield row;
    }
  }
}
