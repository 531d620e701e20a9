import { describe, expect, it } from 'vitest';
import { createFaultController, parseFaultConfig } from './faults.ts';

describe('parseFaultConfig', () => {
  it('accepts every documented fault', () => {
    const r = parseFaultConfig({
      latencyMs: [5, 10],
      errorRate: 0.1,
      burst5xx: 3,
      storm429: { count: 2, retryAfterSeconds: 0 },
      dropRate: 0.2,
      dropAfterApplyRate: 0.3,
      partialFailureRate: 0.5,
      service: 'app',
      pathPattern: '^/v1/segments',
    });
    expect(r.ok).toBe(true);
  });

  it.each([
    ['a rate above 1', { errorRate: 1.5 }, 'errorRate'],
    ['an unknown key (a typo would silently disable a fault)', { eroRate: 0.5 }, 'eroRate'],
    ['an inverted latency range', { latencyMs: [10, 5] }, 'latencyMs'],
    ['an unknown service', { service: 'pipelines' }, 'service'],
    ['a broken regex', { pathPattern: '(' }, 'pathPattern'],
    ['a negative burst', { burst5xx: -1 }, 'burst5xx'],
  ])('refuses %s', (_name, input, field) => {
    const r = parseFaultConfig(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(field);
  });
});

describe('FaultController.decide', () => {
  it('does nothing without faults', () => {
    const f = createFaultController({ seed: 1 });
    expect(f.decide('track', '/api/v1/customers/1')).toMatchObject({ outcome: 'none', latencyMs: 0, dropAfterApply: false });
  });

  it('counts a 503 burst down, then lets requests through', () => {
    const f = createFaultController({ seed: 1, initial: { burst5xx: 2 } });
    expect(f.decide('app', '/v1/segments').outcome).toBe('burst5xx');
    expect(f.get().burst5xx).toBe(1);
    expect(f.decide('app', '/v1/segments')).toMatchObject({ outcome: 'burst5xx', status: 503 });
    expect(f.decide('app', '/v1/segments').outcome).toBe('none');
  });

  it('runs a 429 storm before a 5xx burst, carrying Retry-After', () => {
    const f = createFaultController({ seed: 1, initial: { storm429: { count: 1, retryAfterSeconds: 7 }, burst5xx: 1 } });
    expect(f.decide('track', '/x')).toMatchObject({ outcome: 'storm429', status: 429, retryAfterSeconds: 7 });
    expect(f.decide('track', '/x').outcome).toBe('burst5xx');
    expect(f.decide('track', '/x').outcome).toBe('none');
    expect(f.get().storm429).toEqual({ count: 0, retryAfterSeconds: 7 });
  });

  it('applies only inside its scope (service and path pattern), without consuming counters outside it', () => {
    const f = createFaultController({ seed: 1, initial: { burst5xx: 1, service: 'app', pathPattern: '/membership$' } });
    expect(f.decide('track', '/v1/segments/1/membership').outcome).toBe('none');
    expect(f.decide('app', '/v1/segments/1').outcome).toBe('none');
    expect(f.get().burst5xx).toBe(1);
    expect(f.decide('app', '/v1/segments/1/membership').outcome).toBe('burst5xx');
  });

  it('draws drops, errors and drop-after-apply from the seeded PRNG, reproducibly', () => {
    const config = { dropRate: 0.3, errorRate: 0.3, dropAfterApplyRate: 0.3, latencyMs: [1, 50] as [number, number] };
    const run = () => {
      const f = createFaultController({ seed: 1234, initial: config });
      return Array.from({ length: 50 }, () => {
        const d = f.decide('track', '/api/v2/batch');
        return `${d.outcome}:${d.status ?? ''}:${d.dropAfterApply}:${d.latencyMs}`;
      });
    };
    const a = run();
    expect(run()).toEqual(a);
    const outcomes = new Set(a.map((s) => s.split(':')[0]));
    expect(outcomes).toEqual(new Set(['drop', 'error', 'none']));
    expect(a.some((s) => s.split(':')[2] === 'true')).toBe(true);
    for (const s of a) {
      const latency = Number(s.split(':')[3]);
      expect(latency).toBeGreaterThanOrEqual(1);
      expect(latency).toBeLessThanOrEqual(50);
    }
  });

  it('answers random errors only with 500, 502 or 503', () => {
    const f = createFaultController({ seed: 5, initial: { errorRate: 1 } });
    const statuses = new Set(Array.from({ length: 200 }, () => f.decide('qualtrics', '/API/v3/x').status));
    expect(statuses).toEqual(new Set([500, 502, 503]));
  });

  it('passes the partial failure rate on to the emulator', () => {
    const f = createFaultController({ initial: { partialFailureRate: 0.25 } });
    expect(f.decide('track', '/api/v2/batch').service).toEqual({ partialFailureRate: 0.25 });
  });

  it('merges, replaces and clears', () => {
    const f = createFaultController({ initial: { errorRate: 0.5, burst5xx: 2 } });
    f.merge({ latencyMs: 3, burst5xx: undefined });
    expect(f.get()).toEqual({ errorRate: 0.5, latencyMs: 3 });
    f.set({ dropRate: 1 });
    expect(f.get()).toEqual({ dropRate: 1 });
    expect(() => f.set({ dropRate: 2 })).toThrow(RangeError);
    expect(f.get()).toEqual({ dropRate: 1 });
    f.clear();
    expect(f.get()).toEqual({});
  });
});

describe('method filter and latency after apply', () => {
  it('applies only to the listed methods', () => {
    const f = createFaultController({ seed: 1, initial: { methods: ['POST'], burst5xx: 1 } });
    expect(f.decide('qualtrics', '/API/v3/directories/x/mailinglists', 'GET').outcome).toBe('none');
    expect(f.decide('qualtrics', '/API/v3/directories/x/mailinglists', 'POST').outcome).toBe('burst5xx');
    expect(f.decide('qualtrics', '/API/v3/directories/x/mailinglists', 'POST').outcome).toBe('none');
  });

  it('holds the answer of an applied request', () => {
    const f = createFaultController({ seed: 1, initial: { latencyAfterApplyMs: 250 } });
    expect(f.decide('app', '/v1/segments', 'POST')).toMatchObject({ outcome: 'none', latencyMs: 0, latencyAfterApplyMs: 250 });
  });

  it('refuses an unknown method', () => {
    expect(() => createFaultController({ initial: { methods: ['FETCH'] } })).toThrow(/methods/);
  });
});
