import { describe, expect, it } from 'vitest';
import { translatePlaceholders } from './placeholders.ts';

describe('translatePlaceholders', () => {
  it('turns each $n into a positional ? and records which argument it takes', () => {
    expect(translatePlaceholders('SELECT * FROM t WHERE a = $2 AND b = $1')).toEqual({
      sql: 'SELECT * FROM t WHERE a = ? AND b = ?',
      argIndex: [1, 0],
    });
  });

  it('supports a placeholder used several times and multi-digit numbers', () => {
    expect(translatePlaceholders('VALUES ($1, $2, $10), ($1, $3, $11)')).toEqual({
      sql: 'VALUES (?, ?, ?), (?, ?, ?)',
      argIndex: [0, 1, 9, 0, 2, 10],
    });
  });

  it('leaves dollars inside quoted literals and identifiers, and lone dollars, alone', () => {
    expect(translatePlaceholders(`SELECT '$1', "a$2" FROM t WHERE x = $1 AND y = '$'`)).toEqual({
      sql: `SELECT '$1', "a$2" FROM t WHERE x = ? AND y = '$'`,
      argIndex: [0],
    });
  });
});
