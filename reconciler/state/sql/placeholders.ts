/**
 * SQL is written once with Postgres-style `$n` placeholders. SQLite's numbered `?NNN` parameters can
 * only be bound by name in better-sqlite3, so each `$n` becomes a positional `?` and we remember which
 * argument feeds each position (a `$n` may appear several times).
 */
export interface TranslatedSql {
  sql: string;
  /** For each `?` in order, the 0-based index of the argument it takes. */
  argIndex: number[];
}

export function translatePlaceholders(sql: string): TranslatedSql {
  let out = '';
  const argIndex: number[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      // Copy quoted text verbatim so a `$` inside a literal or identifier is never taken for a placeholder.
      const end = sql.indexOf(ch, i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === '$') {
      let j = i + 1;
      while (j < sql.length && sql.charCodeAt(j) >= 48 && sql.charCodeAt(j) <= 57) j++;
      if (j > i + 1) {
        argIndex.push(Number(sql.slice(i + 1, j)) - 1);
        out += '?';
        i = j;
        continue;
      }
    }
    out += ch;
    i++;
  }
  return { sql: out, argIndex };
}
