/** What the file connectors share: resolving and opening the file, and closing it on every exit path. */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
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
