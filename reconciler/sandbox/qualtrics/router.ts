/** Path matching for the route table. Literal segments beat parameters, so `contacts/search` wins over `contacts/{contactId}`. */
import type { Route } from './context.ts';

interface CompiledRoute {
  route: Route;
  segments: { literal: string | null; name: string | null }[];
  literalCount: number;
}

export interface RouteMatch {
  route: Route;
  params: Record<string, string>;
}

export class Router {
  private readonly compiled: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    this.compiled = routes.map((route) => {
      const segments = route.pattern
        .split('/')
        .filter((s) => s !== '')
        .map((s) => {
          const m = /^\{(\w+)\}$/.exec(s);
          return m ? { literal: null, name: m[1] ?? null } : { literal: s, name: null };
        });
      return { route, segments, literalCount: segments.filter((s) => s.literal !== null).length };
    });
  }

  /** Matches `path` (below `/API/v3`) and method; undefined when no route serves it. */
  match(method: string, path: string): RouteMatch | undefined {
    const parts = path.split('/').filter((s) => s !== '');
    let best: { c: CompiledRoute; params: Record<string, string> } | undefined;
    for (const c of this.compiled) {
      if (c.route.method !== method || c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const seg = c.segments[i];
        const part = parts[i] ?? '';
        if (!seg) {
          ok = false;
          break;
        }
        if (seg.literal !== null) {
          if (seg.literal !== part) {
            ok = false;
            break;
          }
        } else if (seg.name !== null) {
          let decoded: string;
          try {
            decoded = decodeURIComponent(part);
          } catch {
            ok = false;
            break;
          }
          params[seg.name] = decoded;
        }
      }
      if (ok && (!best || c.literalCount > best.c.literalCount)) best = { c, params };
    }
    return best ? { route: best.c.route, params: best.params } : undefined;
  }
}
