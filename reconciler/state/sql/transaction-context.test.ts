import { describe, expect, it } from 'vitest';
import { TransactionContext } from './transaction-context.ts';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('the transaction context of a driver', () => {
  it('is seen by everything a transaction awaits, and by nothing after it', async () => {
    const tx = new TransactionContext<{ name: string }>();
    const seen: (string | undefined)[] = [];
    await tx.run({ name: 'a' }, async () => {
      seen.push(tx.current()?.name);
      await tick();
      await Promise.all([1, 2].map(async () => seen.push(tx.current()?.name)));
    });
    expect(seen).toEqual(['a', 'a', 'a']);
    expect(tx.current()).toBeUndefined();
  });

  it('stays with a transaction while another of the same driver ends first (two connections side by side)', async () => {
    const tx = new TransactionContext<{ name: string }>();
    let release!: () => void;
    const longOne = tx.run({ name: 'long' }, async () => {
      await new Promise<void>((r) => (release = r));
      await tick();
      return tx.current()?.name;
    });
    await tx.run({ name: 'short' }, async () => tick());
    release();
    expect(await longOne).toBe('long');
  });

  it('still shows a finished transaction to code it did not await while another is open', async () => {
    const tx = new TransactionContext<{ name: string; open: boolean }>();
    let straggler!: Promise<{ name: string; open: boolean } | undefined>;
    let release!: () => void;
    const other = tx.run({ name: 'other', open: true }, () => new Promise<void>((r) => (release = r)));
    const first = { name: 'first', open: true };
    await tx.run(first, async () => {
      straggler = (async () => {
        await tick();
        return tx.current();
      })();
    });
    first.open = false;
    // The drivers refuse a statement whose context is a finished transaction.
    expect(await straggler).toEqual({ name: 'first', open: false });
    release();
    await other;
  });
});
