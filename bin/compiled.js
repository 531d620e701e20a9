// The CLI's own modules compiled by esbuild into a few ES modules, kept under node_modules/.cache/tidemark/
// and used only while every source file they came from is byte for byte what they were compiled from.
//
// Why: through tsx, every one of the ~280 modules a command loads crosses tsx's module-hooks thread; a
// `tidemark validate` spent 0.49–0.60 s starting that way and 0.24–0.26 s from the compiled modules
// (docs/BENCHMARKS.md, "Issue 15: the CLI compiled once"). The check that makes the cache safe reads and
// hashes each source file on every start (280 files, 2.1 MB: 8 ms): an edited, added-to or moved checkout
// is compiled again (~0.3 s, once), never run from a stale copy.
//
// Anything that stops the cache (no node_modules, a read-only install, esbuild missing, a file that does
// not compile) returns undefined, and the caller runs the sources through tsx as before.
// TIDEMARK_COMPILE=0 does the same on purpose (tests of that path, or a suspicion about the cache).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'tidemark');
/** The entry points, by output name. `sync-worker` is the parallel read's thread (reconciler/sync/parallel/). */
const ENTRIES = { main: 'reconciler/cli/main.ts', 'sync-worker': 'reconciler/sync/parallel/worker.ts' };
/** Bumped whenever the build below changes, so a cache made by an older launcher is not taken for this one's. */
const FORMAT = 2;
/** Builds of other checkouts or older sources are removed once they have not been used for this long. */
const PRUNE_AFTER_MS = 24 * 60 * 60 * 1000;
/**
 * Past this many builds (a day of editing the sources makes dozens, ~5 MB each), those unused for an hour
 * go too: a process loads its build's modules as it starts its command and its sync workers, within that.
 */
const KEEP_BUILDS = 8;
const PRUNE_EXTRA_AFTER_MS = 60 * 60 * 1000;
/** What the compiled modules find on globalThis (reconciler/sync/parallel/worker-code.ts reads it). */
export const COMPILED = Symbol.for('tidemark.compiled');

const sha1 = (bytes) => createHash('sha1').update(bytes).digest('base64url');

/** Where this checkout's pointer to its current build lives (one per checkout folder, in case two share node_modules). */
const pointerFile = () => path.join(CACHE, `current-${sha1(ROOT).slice(0, 12)}.json`);

/**
 * The compiled CLI: `{ dir, main, built }` with `main` the module namespace of reconciler/cli/main.ts and
 * `built` whether this call compiled it, or `{ reason }` when the sources must run through tsx.
 */
export async function compiledCli(env = process.env) {
  if (env.TIDEMARK_COMPILE === '0') return { reason: 'TIDEMARK_COMPILE=0' };
  let dir;
  let built = false;
  try {
    dir = current();
    if (dir === undefined) {
      dir = await build();
      built = true;
    }
  } catch (e) {
    return { reason: e instanceof Error ? e.message : String(e) };
  }
  if (env.TIDEMARK_DEBUG === '1') process.setSourceMapsEnabled(true);
  let main;
  try {
    main = await import(pathToFileURL(path.join(dir, 'main.js')).href);
  } catch (e) {
    return { reason: `the compiled CLI in ${dir} could not be loaded: ${e instanceof Error ? e.message : String(e)}` };
  }
  globalThis[COMPILED] = { syncWorker: path.join(dir, 'sync-worker.js') };
  return { dir, built, main };
}

/** The current build's folder when every source it was compiled from is unchanged; undefined otherwise. */
function current() {
  let pointer;
  try {
    pointer = JSON.parse(readFileSync(pointerFile(), 'utf8'));
  } catch {
    return undefined;
  }
  if (pointer.format !== FORMAT || pointer.root !== ROOT || pointer.esbuild !== esbuildVersion()) return undefined;
  for (const [file, hash] of Object.entries(pointer.inputs)) {
    let bytes;
    try {
      bytes = readFileSync(path.join(ROOT, file));
    } catch {
      return undefined;
    }
    if (sha1(bytes) !== hash) return undefined;
  }
  const dir = path.join(CACHE, pointer.key);
  // Every module of the build, the commands' loaded later included: a build missing one (removed by hand,
  // a disk cleaner) is removed and made again, never half used.
  if (!Array.isArray(pointer.outputs) || !pointer.outputs.every((f) => existsSync(path.join(dir, f)))) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  try {
    // Marks the build as in use, so prune() leaves it.
    const now = new Date();
    utimesSync(dir, now, now);
  } catch {
    // A read-only cache is still a good one.
  }
  return dir;
}

function esbuildVersion() {
  return JSON.parse(readFileSync(createRequire(import.meta.url).resolve('esbuild/package.json'), 'utf8')).version;
}

/**
 * Compiles the entries into a private folder, then moves it to its key (the hashes of what it was compiled
 * from): processes compiling at once each finish their own and the first to move wins, so no process ever
 * loads a half-written build.
 */
async function build() {
  const esbuild = createRequire(import.meta.url)('esbuild');
  mkdirSync(CACHE, { recursive: true });
  const tmp = path.join(CACHE, `.build-${process.pid}-${randomBytes(4).toString('hex')}`);
  /** Each input's hash, taken from the very bytes compiled (an edit during the build cannot be missed). */
  const inputs = {};
  const sourcePaths = {
    name: 'tidemark-source-paths',
    setup(b) {
      b.onLoad({ filter: /\.[cm]?[jt]s$/ }, (args) => {
        const bytes = readFileSync(args.path);
        inputs[path.relative(ROOT, args.path).split(path.sep).join('/')] = sha1(bytes);
        let text = bytes.toString('utf8');
        // import.meta means the source file's place, as under tsx: packages a module loads on first use
        // (createRequire) and files found next to the source (bin/, starter templates) are found from there.
        if (text.includes('import.meta.')) {
          text = text
            .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
            .replaceAll('import.meta.dirname', JSON.stringify(path.dirname(args.path)))
            .replaceAll('import.meta.filename', JSON.stringify(args.path));
        }
        return { contents: text, loader: args.path.endsWith('ts') ? 'ts' : 'js' };
      });
    },
  };
  try {
    const { metafile } = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, path.join(ROOT, file)])),
      outdir: tmp,
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      chunkNames: 'chunks/[name]-[hash]',
      sourcemap: 'linked',
      logLevel: 'silent',
      metafile: true,
      plugins: [sourcePaths],
    });
    const esbuildAt = esbuildVersion();
    const key = sha1(JSON.stringify([FORMAT, ROOT, esbuildAt, Object.entries(inputs).sort()]));
    const dir = path.join(CACHE, key);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // Another process finished the same build first: its copy is identical.
      if (!existsSync(path.join(dir, 'main.js'))) throw e;
    }
    const pointer = pointerFile();
    const pointerTmp = `${pointer}.${process.pid}-${randomBytes(4).toString('hex')}`;
    const outputs = Object.keys(metafile.outputs).map((f) => path.relative(tmp, path.resolve(ROOT, f)).split(path.sep).join('/'));
    writeFileSync(pointerTmp, JSON.stringify({ format: FORMAT, root: ROOT, esbuild: esbuildAt, key, inputs, outputs }));
    renameSync(pointerTmp, pointer);
    prune(key);
    return dir;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Removes builds no process started from for a day, or for an hour beyond the newest few (current() marks each start). */
function prune(keep) {
  const now = Date.now();
  const builds = [];
  for (const name of readdirSync(CACHE)) {
    if (name === keep || (name.startsWith('current-') && name.endsWith('.json'))) continue;
    try {
      builds.push({ file: path.join(CACHE, name), age: now - statSync(path.join(CACHE, name)).mtimeMs });
    } catch {
      // Removed by another process meanwhile.
    }
  }
  builds.sort((a, b) => a.age - b.age);
  builds.forEach((b, i) => {
    if (b.age > PRUNE_AFTER_MS || (i >= KEEP_BUILDS - 1 && b.age > PRUNE_EXTRA_AFTER_MS)) rmSync(b.file, { recursive: true, force: true });
  });
}
