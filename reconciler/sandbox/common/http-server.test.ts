import { describe, expect, it } from 'vitest';
import { guessRouteTemplate } from './http-server.ts';

describe('guessRouteTemplate', () => {
  it.each([
    ['/API/v3/whoami', '/API/v3/whoami'],
    ['/API/v3/directories/POOL_2a/mailinglists/CG_3xY', '/API/v3/directories/{id}/mailinglists/{id}'],
    ['/API/v3/surveys/SV_abc/export-responses/ES_9', '/API/v3/surveys/{id}/export-responses/{id}'],
    ['/api/v1/customers/42/events', '/api/v1/customers/{id}/events'],
    ['/api/v1/customers/a@b.com', '/api/v1/customers/{id}'],
  ])('groups %s under %s', (path, template) => {
    expect(guessRouteTemplate(path)).toBe(template);
  });
});
