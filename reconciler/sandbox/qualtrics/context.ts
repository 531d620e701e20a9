/** What every API handler receives, and the route table's types. */
import type { SandboxRequest, ServiceFaults } from '../common/types.ts';
import type { ApiResult } from './envelope.ts';
import type { SeededRandom } from './random.ts';
import type { QualtricsStore } from './state.ts';

export interface HandlerContext {
  store: QualtricsStore;
  rng: SeededRandom;
  now(): Date;
  req: SandboxRequest;
  url: URL;
  /** Decoded path parameters, by the names used in the route pattern. */
  params: Record<string, string>;
  faults: ServiceFaults;
  /** `http://host:port` as the client addressed us; absolute URLs we hand out (nextPage, tracking) use it. */
  origin: string;
  /** The request arrived through a host that is not the brand's home datacenter. */
  proxied: boolean;
}

export type Handler = (ctx: HandlerContext) => ApiResult;

export interface Route {
  method: string;
  /** Path below `/API/v3`, with `{name}` parameters, e.g. `/directories/{directoryId}/mailinglists`. */
  pattern: string;
  handler: Handler;
}

/** `"GET /surveys/{surveyId}"`: the key per-endpoint rate limits are configured under. */
export function routeKey(route: Route): string {
  return `${route.method} ${route.pattern}`;
}

export function param(ctx: HandlerContext, name: string): string {
  const v = ctx.params[name];
  if (v === undefined) throw new Error(`route has no parameter ${name}`);
  return v;
}
