/**
 * Fault injection for the sandbox listeners: the failures a client must survive in production (slow answers,
 * random 5xx, bursts of 503, 429 storms, connections dropped before or after the write was applied, partial
 * batch failures), made reproducible by a seeded PRNG so tests assert on outcomes, not on luck.
 */
import { z } from 'zod';
import { createPrng, type Prng } from '../../core/prng.ts';
import { randomSeed } from './random-seed.ts';
import type { ServiceFaults } from './types.ts';

/** Which listener a fault applies to. Customer.io has two (Track, App); Qualtrics one. */
export type FaultService = 'track' | 'app' | 'qualtrics';

/** JSON-serialisable fault settings; the same shape goes through options, the in-process API and the admin endpoint. */
export interface FaultConfig {
  /** Added delay before answering: a fixed number of milliseconds, or a uniform [min, max] range. */
  latencyMs?: number | [number, number];
  /** Share (0..1) of requests answered with a random 500, 502 or 503 carrying the service's error body. */
  errorRate?: number;
  /** The next N matching requests get 503. Counts down; `get()` shows what is left. */
  burst5xx?: number;
  /** The next `count` matching requests get 429 with `Retry-After: retryAfterSeconds` and the documented body. */
  storm429?: { count: number; retryAfterSeconds: number };
  /**
   * Delay after the request was applied and before its answer: the service did the work, the caller does
   * not know yet (a slow answer a client may time out on, or a process killed while waiting).
   */
  latencyAfterApplyMs?: number;
  /** Share of requests whose socket is destroyed without an answer, before the request is applied. */
  dropRate?: number;
  /** Share of requests that ARE applied, then have their socket destroyed without an answer. */
  dropAfterApplyRate?: number;
  /** Customer.io v2 batch: share of entries failed per entry in a 207 (the other entries are applied). */
  partialFailureRate?: number;
  /** Limit the faults to one listener; all listeners when absent. */
  service?: FaultService;
  /** Limit the faults to request paths matching this regular expression (matched against the path only). */
  pathPattern?: string;
  /** Limit the faults to these HTTP methods (e.g. only the POST that creates, not the GET that lists). */
  methods?: string[];
}

const rate = z.number().min(0).max(1);

const latencySchema = z.union([
  z.number().int().min(0),
  z
    .tuple([z.number().int().min(0), z.number().int().min(0)])
    .refine(([min, max]) => min <= max, { message: 'latencyMs range must be [min, max] with min <= max' }),
]);

/** Strict: an unknown key in a fault config is a typo that would silently disable the intended fault. */
export const faultConfigSchema = z
  .strictObject({
    latencyMs: latencySchema.optional(),
    latencyAfterApplyMs: z.number().int().min(0).optional(),
    errorRate: rate.optional(),
    burst5xx: z.number().int().min(0).optional(),
    storm429: z
      .strictObject({ count: z.number().int().min(0), retryAfterSeconds: z.number().int().min(0) })
      .optional(),
    dropRate: rate.optional(),
    dropAfterApplyRate: rate.optional(),
    partialFailureRate: rate.optional(),
    service: z.enum(['track', 'app', 'qualtrics']).optional(),
    methods: z.array(z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'])).min(1).optional(),
    pathPattern: z
      .string()
      .refine(
        (s) => {
          try {
            new RegExp(s);
            return true;
          } catch {
            return false;
          }
        },
        { message: 'pathPattern is not a valid regular expression' },
      )
      .optional(),
  });

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

/** Validates untrusted input (admin endpoint, CLI) into a FaultConfig; the message names every bad field. */
export function parseFaultConfig(input: unknown): ParseResult<FaultConfig> {
  const r = faultConfigSchema.safeParse(input);
  if (r.success) return { ok: true, value: stripUndefined(r.data) as FaultConfig };
  const message = r.error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return { ok: false, message };
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** What the server does with one request. */
export interface FaultDecision {
  /** Delay before anything else happens (0 = none). */
  latencyMs: number;
  /**
   * `drop`: destroy the socket, request not applied. `storm429` / `burst5xx` / `error`: answer with `status`
   * without applying. `none`: hand the request to the emulator.
   */
  outcome: 'none' | 'drop' | 'storm429' | 'burst5xx' | 'error';
  status?: number;
  retryAfterSeconds?: number;
  /** Apply the request, then destroy the socket instead of answering. Only meaningful with outcome `none`. */
  dropAfterApply: boolean;
  /** Apply the request, then wait this long before answering (0 = none). Only meaningful with outcome `none`. */
  latencyAfterApplyMs?: number;
  /** Faults the emulator applies itself. */
  service: ServiceFaults;
}

const NO_FAULT: FaultDecision = { latencyMs: 0, outcome: 'none', dropAfterApply: false, service: {} };

export interface FaultController {
  /** A copy of the current config, with counters (burst5xx, storm429.count) showing what is left. */
  get(): FaultConfig;
  /** Replace the config. Throws on an invalid config. */
  set(config: FaultConfig): void;
  /** Shallow-merge into the current config (a key set to undefined is removed). Throws on an invalid result. */
  merge(partial: FaultConfig): void;
  clear(): void;
  /** Decide the fate of one request; consumes burst/storm counters and PRNG draws. */
  decide(service: string, pathname: string, method?: string): FaultDecision;
}

export function createFaultController(options: { seed?: number; initial?: FaultConfig; prng?: Prng } = {}): FaultController {
  const prng = options.prng ?? createPrng(options.seed ?? randomSeed());
  let config: FaultConfig = {};
  let pattern: RegExp | undefined;

  const install = (next: FaultConfig): void => {
    const parsed = parseFaultConfig(next);
    if (!parsed.ok) throw new RangeError(`invalid fault config: ${parsed.message}`);
    config = parsed.value;
    pattern = config.pathPattern !== undefined ? new RegExp(config.pathPattern) : undefined;
  };
  if (options.initial) install(options.initial);

  return {
    get() {
      return structuredClone(config);
    },
    set(next) {
      install(next);
    },
    merge(partial) {
      const merged: Record<string, unknown> = { ...config };
      for (const [k, v] of Object.entries(partial)) {
        if (v === undefined) delete merged[k];
        else merged[k] = v;
      }
      install(merged as FaultConfig);
    },
    clear() {
      config = {};
      pattern = undefined;
    },
    decide(service, pathname, method) {
      if (config.service !== undefined && config.service !== service) return NO_FAULT;
      if (config.methods !== undefined && (method === undefined || !config.methods.includes(method.toUpperCase()))) return NO_FAULT;
      if (pattern !== undefined && !pattern.test(pathname)) return NO_FAULT;

      let latencyMs = 0;
      const l = config.latencyMs;
      if (typeof l === 'number') latencyMs = l;
      else if (Array.isArray(l)) latencyMs = prng.int(l[0], l[1]);

      const serviceFaults: ServiceFaults = {};
      if (config.partialFailureRate !== undefined) serviceFaults.partialFailureRate = config.partialFailureRate;
      const base = { latencyMs, dropAfterApply: false, service: serviceFaults };

      if (config.dropRate !== undefined && prng.chance(config.dropRate)) return { ...base, outcome: 'drop' };
      if (config.storm429 !== undefined && config.storm429.count > 0) {
        config.storm429 = { ...config.storm429, count: config.storm429.count - 1 };
        return { ...base, outcome: 'storm429', status: 429, retryAfterSeconds: config.storm429.retryAfterSeconds };
      }
      if (config.burst5xx !== undefined && config.burst5xx > 0) {
        config.burst5xx -= 1;
        return { ...base, outcome: 'burst5xx', status: 503 };
      }
      if (config.errorRate !== undefined && prng.chance(config.errorRate)) {
        return { ...base, outcome: 'error', status: prng.pick([500, 502, 503]) };
      }
      const dropAfterApply = config.dropAfterApplyRate !== undefined && prng.chance(config.dropAfterApplyRate);
      return { ...base, outcome: 'none', dropAfterApply, ...(config.latencyAfterApplyMs ? { latencyAfterApplyMs: config.latencyAfterApplyMs } : {}) };
    },
  };
}
