/**
 * Golden plan renderings: one folder per scenario under test/fixtures/plans/<case>/ holds the inputs
 * (`specs/`, `state.json`, `live.json`, optional `options.json`) and the expected renderings (`plan.txt`,
 * `plan.md`, `plan.json`). Each case runs the real pipeline minus I/O: validateSpecs → desiredResources →
 * computePlan with the kinds' own pure traits → the three renderers, and compares bytes.
 *
 * To accept new output after an intended change: UPDATE_GOLDEN=1 npx vitest run test/plan/golden-plans
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fixedClock } from '../../reconciler/core/clock.ts';
import { digestOf, sha256 } from '../../reconciler/core/digest.ts';
import { plainStyle } from '../../reconciler/core/style.ts';
import { configKinds, desiredResources } from '../../reconciler/kinds/index.ts';

import { computePlan, type KindTraits, type LiveEntry, type StateEntry } from '../../reconciler/plan/diff.ts';
import type { Plan } from '../../reconciler/plan/plan.ts';
import { renderPlanJson, renderPlanMarkdown, renderPlanText } from '../../reconciler/plan/render/index.ts';
import type { CustomerioClient } from '../../reconciler/providers/customerio/client.ts';
import type { QualtricsClient } from '../../reconciler/providers/qualtrics/client.ts';
import type { SpecModel } from '../../reconciler/spec/model.ts';
import { validateSpecs, type SpecFile } from '../../reconciler/spec/validate.ts';

const root = path.resolve(import.meta.dirname, '../fixtures/plans');
const CLOCK = fixedClock('2026-11-23T12:00:00Z');
const REVISION = '0123456789abcdef0123456789abcdef01234567';
const VERSION = '0.1.0';
const update = process.env.UPDATE_GOLDEN === '1';

// Strict shapes: a typo in a fixture must fail loudly instead of silently planning something else.
const attributeValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string()), z.null()]);
const attributes = z.record(z.string(), attributeValue);
const stateSchema = z.array(
  z.strictObject({
    address: z.string(),
    kind: z.string(),
    remoteId: z.string(),
    attributes,
    dependsOn: z.array(z.string()),
    preventDestroy: z.boolean(),
  }),
);
const liveSchema = z.record(
  z.string(),
  z.array(z.strictObject({ id: z.string(), name: z.string(), attributes, updatedAt: z.string().optional(), manageable: z.boolean() })),
);
const optionsSchema = z.strictObject({
  environment: z.string().optional(),
  allowDelete: z.boolean().default(false),
  adoptByName: z.boolean().default(false),
  targets: z.array(z.string()).default([]),
});

/** A client whose every use throws: proves the kinds' traits the planner uses do no I/O. */
function noClient<T>(): T {
  return new Proxy({}, { get: (_t, prop) => { throw new Error(`the planner touched the client (${String(prop)})`); } }) as T;
}

/** The kinds `connect()` wires for an environment (the same registry), with clients that must never be called. */
function kindTraits(model: SpecModel, environment: string): Record<string, KindTraits> {
  const envCfg = model.workspace!.spec.environments[environment]!;
  return configKinds(envCfg, { customerio: noClient<CustomerioClient>(), qualtrics: noClient<QualtricsClient>() });
}

function readJson(file: string): unknown {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined;
}

function specFiles(caseDir: string): SpecFile[] {
  const dir = path.join(caseDir, 'specs');
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => ({ path: `specs/${f}`, text: readFileSync(path.join(dir, f), 'utf8') }));
}

/** Plans a case from its files; `inputs` replaces the state and live objects read from the case. */
function planCase(name: string, inputs?: { state: unknown; live: unknown }): Plan {
  const dir = path.join(root, name);
  const files = specFiles(dir);
  const validation = validateSpecs(files);
  const errors = validation.diagnostics.filter((d) => d.severity === 'error');
  expect(errors, `the specs of case ${name} must be valid`).toEqual([]);
  const model = validation.model!;
  const options = optionsSchema.parse(readJson(path.join(dir, 'options.json')) ?? {});
  const environment = options.environment ?? model.workspace?.spec.default_environment ?? 'staging';
  const state: StateEntry[] = stateSchema.parse((inputs ? inputs.state : readJson(path.join(dir, 'state.json'))) ?? []);
  const live: Record<string, LiveEntry[]> = liveSchema.parse((inputs ? inputs.live : readJson(path.join(dir, 'live.json'))) ?? {});
  const digests = Object.fromEntries(files.map((f) => [f.path, sha256(f.text)]));
  return computePlan({
    environment,
    target: { mode: 'sandbox', id: `sandbox:${environment}`, label: 'the embedded sandbox' },
    desired: desiredResources(model, environment),
    kinds: kindTraits(model, environment),
    state,
    live,
    options: { allowDelete: options.allowDelete, adoptByName: options.adoptByName, targets: options.targets },
    specs: { revision: REVISION, dirty: false, digest: digestOf(digests), files: digests },
    clock: CLOCK,
    version: VERSION,
    // As makePlan does: warnings travel with the plan; errors would have stopped before planning.
    diagnostics: validation.diagnostics.filter((d) => d.severity === 'warning'),
  });
}

interface Renderings {
  'plan.txt': string;
  'plan.md': string;
  'plan.json': string;
}

function renderAll(plan: Plan): Renderings {
  return { 'plan.txt': renderPlanText(plan, plainStyle), 'plan.md': renderPlanMarkdown(plan), 'plan.json': renderPlanJson(plan) };
}

/** A deep copy whose object keys are inserted in reverse order (arrays keep their order: it means something). */
function reverseKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reverseKeys) as T;
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).reverse()) out[k] = reverseKeys((value as Record<string, unknown>)[k]);
    return out as T;
  }
  return value;
}

const cases = readdirSync(root, { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name)
  .sort();

const REQUIRED_CASES = [
  'first-apply',
  'converged',
  'update-and-drift',
  'replace-directory',
  'delete-blocked',
  'delete-allowed',
  'prevent-destroy-after-removal',
  'rename-moved-from',
  'adopt-by-name',
  'duplicate-name-blocked',
  'deleted-outside',
  'forget',
  'targeted',
  'webhook-without-url',
];

describe('golden plan renderings', () => {
  it('has every required case', () => {
    expect(cases).toEqual(expect.arrayContaining(REQUIRED_CASES));
  });

  describe.each(cases)('%s', (name) => {
    let cached: { plan: Plan; rendered: Renderings } | undefined;
    const result = () => {
      if (!cached) {
        const plan = planCase(name);
        cached = { plan, rendered: renderAll(plan) };
      }
      return cached;
    };

    it.each(['plan.txt', 'plan.md', 'plan.json'] as const)('%s matches', (file) => {
      const actual = result().rendered[file];
      const expectedPath = path.join(root, name, file);
      if (update) writeFileSync(expectedPath, actual);
      expect(existsSync(expectedPath), `${name}/${file} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
      expect(actual).toBe(readFileSync(expectedPath, 'utf8'));
    });

    it('renders the same bytes twice, from a key-reversed copy, and from its own JSON', () => {
      const { plan, rendered } = result();
      expect(renderAll(plan)).toEqual(rendered);
      expect(renderAll(reverseKeys(plan))).toEqual(rendered);
      // The saved plan artifact renders exactly like the plan it was written from.
      expect(renderAll(JSON.parse(rendered['plan.json']) as Plan)).toEqual(rendered);
    });

    it('plans the same thing from inputs given in another order', () => {
      // Pairing must not depend on the order state or live objects were listed in.
      const dir = path.join(root, name);
      const state = readJson(path.join(dir, 'state.json'));
      const live = readJson(path.join(dir, 'live.json'));
      const again = planCase(name, {
        state: Array.isArray(state) ? [...state].reverse() : state,
        live: live && typeof live === 'object' ? Object.fromEntries(Object.entries(live).reverse().map(([k, v]) => [k, [...(v as unknown[])].reverse()])) : live,
      });
      expect(renderPlanJson(again)).toBe(result().rendered['plan.json']);
    });
  });
});
