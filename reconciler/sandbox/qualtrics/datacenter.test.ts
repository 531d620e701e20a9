import { describe, expect, it } from 'vitest';
import { homeHostFor } from './datacenter.ts';
import type { QualtricsConfig } from './state.ts';

const config = (over: Partial<QualtricsConfig>) => ({ datacenter: 'iad1', homeHost: null, ...over }) as QualtricsConfig;

describe('homeHostFor', () => {
  it.each([
    ['a loopback host when no home host is set', config({}), 'http://127.0.0.1:4010/API/v3/whoami', undefined],
    ['the home datacenter host', config({}), 'https://iad1.qualtrics.com/API/v3/whoami', undefined],
    ['an organisation host in the home datacenter', config({}), 'https://acme.iad1.qualtrics.com/API/v3/whoami', undefined],
    ['another datacenter', config({}), 'https://fra1.qualtrics.com/API/v3/whoami', 'iad1.qualtrics.com'],
    ['an organisation host in another datacenter', config({}), 'https://acme.co1.qualtrics.com/x', 'iad1.qualtrics.com'],
    ['the configured home host', config({ homeHost: '127.0.0.1:4010' }), 'http://127.0.0.1:4010/x', undefined],
    ['another spelling of it', config({ homeHost: '127.0.0.1:4010' }), 'http://localhost:4010/x', '127.0.0.1:4010'],
    ['another port', config({ homeHost: '127.0.0.1:4010' }), 'http://127.0.0.1:4011/x', '127.0.0.1:4010'],
  ])('for %s', (_name, cfg, url, expected) => {
    expect(homeHostFor(cfg, new URL(url))).toBe(expected);
  });
});
