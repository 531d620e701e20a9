/**
 * Leaky-bucket throttling, the algorithm Qualtrics is reported to use: each request adds one unit, the
 * bucket drains continuously at `perMinute / 60 s`, and a request that would overflow it is refused
 * (429) without being counted. Buckets are transient and not part of the snapshot.
 */

interface Level {
  level: number;
  atMs: number;
}

export interface BucketCheck {
  key: string;
  perMinute: number;
}

export class LeakyBuckets {
  private readonly levels = new Map<string, Level>();

  /**
   * Admits one request against every bucket in `checks`, or none of them. Returns 0 when admitted,
   * otherwise the milliseconds until the fullest refusing bucket has room for one more request.
   */
  take(checks: readonly BucketCheck[], nowMs: number): number {
    let waitMs = 0;
    const drained = checks.map((c) => {
      const ratePerMs = c.perMinute / 60_000;
      const prev = this.levels.get(c.key);
      const elapsed = prev ? Math.max(0, nowMs - prev.atMs) : 0;
      const level = prev ? Math.max(0, prev.level - elapsed * ratePerMs) : 0;
      if (level + 1 > c.perMinute) waitMs = Math.max(waitMs, (level + 1 - c.perMinute) / ratePerMs);
      return { key: c.key, level };
    });
    if (waitMs > 0) return waitMs;
    for (const d of drained) this.levels.set(d.key, { level: d.level + 1, atMs: nowMs });
    return 0;
  }

  clear(): void {
    this.levels.clear();
  }
}
