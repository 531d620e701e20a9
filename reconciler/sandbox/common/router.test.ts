import { describe, expect, it } from 'vitest';
import { compileRoutes, matchRoute, templateFor } from './router.ts';

const routes = compileRoutes([
  { method: 'PUT', template: '/api/v1/customers/{identifier}', handler: 'identify' },
  { method: 'DELETE', template: '/api/v1/customers/{identifier}', handler: 'delete' },
  { method: 'POST', template: '/api/v1/customers/{identifier}/events', handler: 'track' },
  { method: 'POST', template: '/v1/customers/attributes', handler: 'lookup' },
  { method: 'GET', template: '/v1/customers/{customer_id}/attributes', handler: 'attrs' },
]);

describe('matchRoute', () => {
  it('matches by method and decodes parameters', () => {
    const m = matchRoute(routes, 'PUT', '/api/v1/customers/a%40b.com');
    expect(m.outcome).toBe('match');
    if (m.outcome === 'match') {
      expect(m.route.handler).toBe('identify');
      expect(m.params).toEqual({ identifier: 'a@b.com' });
    }
  });

  it('reports the allowed methods when only the method is wrong', () => {
    const m = matchRoute(routes, 'GET', '/api/v1/customers/42');
    expect(m).toEqual({ outcome: 'method', template: '/api/v1/customers/{identifier}', allowed: ['PUT', 'DELETE'] });
  });

  it('does not let a parameter span segments', () => {
    expect(matchRoute(routes, 'PUT', '/api/v1/customers/42/extra').outcome).toBe('none');
    expect(matchRoute(routes, 'PUT', '/api/v1/customers/').outcome).toBe('none');
  });

  it('prefers the literal route whose method matches', () => {
    const m = matchRoute(routes, 'POST', '/v1/customers/attributes');
    expect(m.outcome === 'match' && m.route.handler).toBe('lookup');
  });

  it('treats malformed percent-encoding as no match', () => {
    expect(matchRoute(routes, 'PUT', '/api/v1/customers/%E0%A4%A').outcome).toBe('none');
  });

  it('gives the template for counting, even on a method mismatch', () => {
    expect(templateFor(routes, 'POST', '/api/v1/customers/7/events')).toBe('/api/v1/customers/{identifier}/events');
    expect(templateFor(routes, 'PATCH', '/api/v1/customers/7')).toBe('/api/v1/customers/{identifier}');
    expect(templateFor(routes, 'GET', '/nope')).toBeUndefined();
  });
});
