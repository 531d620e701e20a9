/**
 * Path-template routing for the emulators: `/v1/segments/{segment_id}/membership` style templates, the same
 * notation the OpenAPI files use, so a route reads like the spec it implements and doubles as the key the
 * server counts requests under.
 */

export interface Route<H> {
  method: string;
  template: string;
  handler: H;
}

export interface CompiledRoute<H> extends Route<H> {
  regex: RegExp;
  names: string[];
}

export type RouteMatch<H> =
  | { outcome: 'match'; route: CompiledRoute<H>; params: Record<string, string> }
  /** The path exists under another method. */
  | { outcome: 'method'; template: string; allowed: string[] }
  | { outcome: 'none' };

export function compileRoutes<H>(routes: ReadonlyArray<Route<H>>): CompiledRoute<H>[] {
  return routes.map((r) => {
    const names: string[] = [];
    const source = r.template
      .split('/')
      .map((seg) => {
        const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(seg);
        if (m) {
          names.push(m[1]!);
          return '([^/]+)';
        }
        return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    return { ...r, regex: new RegExp(`^${source}$`), names };
  });
}

/**
 * Finds the route for a raw (still percent-encoded) pathname. Parameters are percent-decoded; a parameter that
 * is not valid percent-encoding makes the route not match, as a real server would answer 404/400.
 */
export function matchRoute<H>(routes: ReadonlyArray<CompiledRoute<H>>, method: string, pathname: string): RouteMatch<H> {
  const allowed: string[] = [];
  let template = '';
  for (const route of routes) {
    const m = route.regex.exec(pathname);
    if (!m) continue;
    if (route.method !== method) {
      allowed.push(route.method);
      template = route.template;
      continue;
    }
    const params: Record<string, string> = {};
    let ok = true;
    route.names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(m[i + 1]!);
      } catch {
        ok = false;
      }
    });
    // A path that is not valid percent-encoding cannot name anything.
    if (!ok) return { outcome: 'none' };
    return { outcome: 'match', route, params };
  }
  return allowed.length > 0 ? { outcome: 'method', template, allowed } : { outcome: 'none' };
}

/** The template a request would be counted under, regardless of method mismatches. */
export function templateFor<H>(routes: ReadonlyArray<CompiledRoute<H>>, method: string, pathname: string): string | undefined {
  const m = matchRoute(routes, method, pathname);
  if (m.outcome === 'match') return m.route.template;
  if (m.outcome === 'method') return m.template;
  return undefined;
}
