/**
 * Counts requests per `METHOD /route/template` across all listeners, so benchmarks can assert how many API
 * calls a run needed (e.g. "1 000 000 rows took 2 000 POST /api/v2/batch") without one key per customer.
 */
export interface RequestCounter {
  increment(key: string): void;
  /** Plain object copy, keys sorted. */
  snapshot(): Record<string, number>;
  reset(): void;
}

export function createRequestCounter(): RequestCounter {
  const counts = new Map<string, number>();
  return {
    increment(key) {
      counts.set(key, (counts.get(key) ?? 0) + 1);
    },
    snapshot() {
      const out: Record<string, number> = {};
      for (const key of [...counts.keys()].sort()) out[key] = counts.get(key)!;
      return out;
    },
    reset() {
      counts.clear();
    },
  };
}
