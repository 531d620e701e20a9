/**
 * Sticky comments: one comment (or one numbered series of comments) per kind and environment, found again
 * by a hidden marker on its first line and edited in place. Pure: markers, parsing and splitting; the
 * calls are in comments.ts.
 *
 * A body over GitHub's limit (65,536 characters) becomes numbered parts, each with its own marker
 * `<!-- tidemark-plan environment=E part=K -->` and a "part K of N" line. Parts are cut between blocks:
 * never inside a fenced code block or a `<details>` block when it can be helped, and a table cut in two
 * gets its header again. A single block larger than a part is cut by lines, its fence and `<details>`
 * closed and reopened, so every part renders on its own.
 */

/** GitHub refuses issue and pull-request comment bodies over this many characters. */
export const GITHUB_COMMENT_LIMIT = 65_536;

export type StickyKind = 'plan' | 'apply';

export interface StickyMarker {
  kind: StickyKind;
  environment: string;
  /** 1 for a comment without `part=` (a body that fitted in one). */
  part: number;
}

/** The marker line. Without `part` it is exactly plan/render/markdown.ts's planCommentMarker for kind plan. */
export function stickyMarker(kind: StickyKind, environment: string, part?: number): string {
  return `<!-- tidemark-${kind} environment=${encodeURIComponent(environment)}${part === undefined ? '' : ` part=${part}`} -->`;
}

const MARKER = /^<!-- tidemark-(plan|apply) environment=([^\s>]+)(?: part=([1-9]\d{0,3}))? -->(?:\r?\n|$)/;

/** The marker a comment body starts with, or undefined (a marker elsewhere in a body does not count). */
export function parseStickyMarker(body: string | null | undefined): StickyMarker | undefined {
  const m = MARKER.exec(body ?? '');
  if (!m) return undefined;
  let environment: string;
  try {
    environment = decodeURIComponent(m[2]!);
  } catch {
    return undefined;
  }
  return { kind: m[1] as StickyKind, environment, part: m[3] ? Number(m[3]) : 1 };
}

/** A body without its marker line (the caller's marker is put back per part). */
function withoutMarker(body: string): string {
  return MARKER.test(body) ? body.replace(MARKER, '') : body;
}

interface Atom {
  text: string;
  /** For a table row: the table's header and separator lines, repeated when a part starts inside the table. */
  tableHeader?: string;
}

const FENCE = /^(`{3,}|~{3,})/;

/** Lines grouped into what must stay together: a `<details>` block, a fenced block, a table row, a line. */
function atoms(text: string): Atom[] {
  const lines = text.split(/(?<=\n)/);
  const out: Atom[] = [];
  let i = 0;
  let tableHeader: string | undefined;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith('<details')) {
      let depth = 0;
      let fence: string | undefined;
      let text = '';
      for (; i < lines.length; i++) {
        const l = lines[i]!;
        text += l;
        const f = FENCE.exec(l)?.[1];
        if (fence) {
          if (f && f[0] === fence[0] && f.length >= fence.length && l.trim() === f) fence = undefined;
          continue;
        }
        if (f) {
          fence = f;
          continue;
        }
        depth += (l.match(/<details[\s>]/g) ?? []).length - (l.match(/<\/details>/g) ?? []).length;
        if (depth <= 0) {
          i++;
          break;
        }
      }
      out.push({ text });
      tableHeader = undefined;
      continue;
    }
    const f = FENCE.exec(line)?.[1];
    if (f) {
      let text = line;
      for (i++; i < lines.length; i++) {
        text += lines[i]!;
        if (lines[i]!.trim() === f || (FENCE.exec(lines[i]!)?.[1]?.startsWith(f) && lines[i]!.trim().length >= f.length && /^[`~]+$/.test(lines[i]!.trim()))) {
          i++;
          break;
        }
      }
      out.push({ text });
      tableHeader = undefined;
      continue;
    }
    if (line.startsWith('|')) {
      const next = lines[i + 1];
      if (tableHeader === undefined && next && /^\|\s*:?-{3,}/.test(next)) {
        tableHeader = line + next;
        out.push({ text: tableHeader });
        i += 2;
        continue;
      }
      out.push(tableHeader === undefined ? { text: line } : { text: line, tableHeader });
      i++;
      continue;
    }
    tableHeader = undefined;
    out.push({ text: line });
    i++;
  }
  return out;
}

/** Cuts one block that is larger than a part by lines, closing and reopening its fence and `<details>`. */
function cutAtom(text: string, budget: number): string[] {
  const pieces: string[] = [];
  let current = '';
  let fence: string | undefined;
  let details = 0;
  const closing = () => `${fence ? `${fence}\n` : ''}${'</details>\n'.repeat(details)}\n_(continued in the next part)_\n`;
  const reopening = () => `${'<details open><summary>(continued)</summary>\n\n'.repeat(details)}${fence ? `${fence}\n` : ''}`;
  for (const line of text.split(/(?<=\n)/)) {
    // A single line longer than a part (a huge value) is cut by characters.
    const segments = line.length > budget / 2 ? line.match(new RegExp(`[\\s\\S]{1,${Math.floor(budget / 2)}}`, 'g'))! : [line];
    for (const seg of segments) {
      if (current.length + seg.length + closing().length > budget && current.length > 0) {
        pieces.push(current + closing());
        current = reopening();
      }
      current += seg;
    }
    const f = FENCE.exec(line)?.[1];
    if (fence) {
      if (line.trim() === fence) fence = undefined;
    } else if (f) {
      fence = f;
    } else {
      details += (line.match(/<details[\s>]/g) ?? []).length - (line.match(/<\/details>/g) ?? []).length;
      if (details < 0) details = 0;
    }
  }
  if (current) pieces.push(current);
  return pieces;
}

/**
 * The comment bodies to post for `body` (which may start with any tidemark marker; it is replaced):
 * one body with the plain marker when it fits in `limit`, else parts with `part=K` markers.
 */
export function splitSticky(kind: StickyKind, environment: string, body: string, limit = GITHUB_COMMENT_LIMIT): string[] {
  const content = withoutMarker(body);
  const single = `${stickyMarker(kind, environment)}\n${content}`;
  if (single.length <= limit) return [single];
  // Room for the marker and "part K of N" line, whatever N turns out to be.
  const header = (k: number, n: number) => `${stickyMarker(kind, environment, k)}\n_tidemark ${kind} for ${environment.replace(/[^\w.-]/g, '_')}: part ${k} of ${n}_\n\n`;
  const budget = limit - header(9999, 9999).length;
  if (budget < 1000) throw new RangeError(`a comment limit of ${limit} leaves no room for a part`);
  const chunks: string[] = [];
  let current = '';
  let currentTable: string | undefined;
  const flush = () => {
    if (current.trim()) chunks.push(current);
    current = '';
    currentTable = undefined;
  };
  for (const atom of atoms(content)) {
    const prefix = atom.tableHeader !== undefined && currentTable !== atom.tableHeader ? atom.tableHeader : '';
    if (current.length + prefix.length + atom.text.length > budget) {
      flush();
    }
    const needsHeader = atom.tableHeader !== undefined && currentTable !== atom.tableHeader && current === '' ? atom.tableHeader : '';
    if (needsHeader.length + atom.text.length > budget) {
      for (const piece of cutAtom(atom.text, budget)) {
        if (current.length + piece.length > budget) flush();
        current += piece;
      }
      continue;
    }
    current += needsHeader + atom.text;
    currentTable = atom.tableHeader ?? (atom.text.startsWith('|') ? atom.text : undefined);
  }
  flush();
  return chunks.map((c, i) => header(i + 1, chunks.length) + c);
}
