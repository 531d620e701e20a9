/** The example specs of the D2C brand validate cleanly, and editors can check them against current schemas. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateJsonSchemas } from '../../reconciler/spec/json-schema.ts';
import { findSpecFiles, loadSpecs } from '../../reconciler/spec/load.ts';

const repo = path.resolve(import.meta.dirname, '../..');

describe('example specs', () => {
  it('validate with no errors and no warnings', async () => {
    const result = await loadSpecs('specs', repo);
    expect(result.diagnostics).toEqual([]);
    expect(result.model).toBeDefined();
    expect(result.counts).toEqual({ Workspace: 1, Fields: 1, Source: 7, Segment: 8, SurveyTarget: 3 });
  });

  it('cover the field guides’ scenarios', async () => {
    const { model } = await loadSpecs('specs', repo);
    const m = model!;
    const fit = m.surveyTargets.get('post_purchase_fit')!.spec;
    expect([fit.moment.event, fit.moment.after, fit.moment.before]).toEqual(['order_delivered', '7d', '14d']);
    expect(m.surveyTargets.get('cancel_intent_reason')!.spec.purpose).toBe('cancellation_reason');
    expect(m.segments.get('lapsed_60_120')!.spec.conditions).toBeDefined();
    const winback = m.segments.get('winback_eligible')!.spec;
    expect(JSON.stringify(winback.conditions)).toContain('restarted_subscribers');
    const vip = m.sources.get('warehouse_vip')!.spec;
    expect(vip.schedule).toBe('0 3 * * *');
    expect(vip.fields).toHaveProperty('vip_tier_updated_at');
    expect(new Set([...m.sources.values()].map((s) => s.spec.system))).toEqual(new Set(['shopify', 'recharge', 'loyalty', 'returns', 'warehouse']));
  });

  it('every example file starts with the yaml-language-server $schema line pointing at a generated schema', async () => {
    const files = await findSpecFiles(path.join(repo, 'specs'));
    expect(files.length).toBeGreaterThan(5);
    const generated = generateJsonSchemas();
    for (const f of files) {
      const first = (await readFile(f, 'utf8')).split('\n')[0]!;
      const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(m, `${f} must start with the $schema line`).not.toBeNull();
      expect(generated.has(path.basename(m![1]!)), f).toBe(true);
      await expect(readFile(path.resolve(path.dirname(f), m![1]!), 'utf8')).resolves.toBeTruthy();
    }
  });

  it('the JSON Schemas in specs/schema are up to date with the zod schemas (run `npm run schemas`)', async () => {
    for (const [file, text] of generateJsonSchemas()) {
      expect(await readFile(path.join(repo, 'specs/schema', file), 'utf8').catch(() => 'missing'), file).toBe(text);
    }
  });
});
