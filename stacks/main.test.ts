import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadSpecs } from '../reconciler/spec/load.ts';
import { buildApp } from './main.ts';

describe('Terraform export (cdktf)', () => {
  it('synthesises one stack per environment with a null_resource per managed object', async () => {
    const repo = path.resolve(import.meta.dirname, '..');
    const { model } = await loadSpecs('specs', repo);
    const outdir = await mkdtemp(path.join(os.tmpdir(), 'tidemark-cdktf-'));
    onTestFinished(() => rm(outdir, { recursive: true, force: true }));
    buildApp(model!, outdir).synth();
    const stacks = (await readdir(path.join(outdir, 'stacks'))).sort();
    expect(stacks).toEqual(['tidemark-production', 'tidemark-staging']);
    const tf = JSON.parse(await readFile(path.join(outdir, 'stacks/tidemark-staging/cdk.tf.json'), 'utf8'));
    const resources = tf.resource.null_resource as Record<string, { triggers: Record<string, string>; lifecycle?: { prevent_destroy?: boolean }; depends_on?: string[] }>;
    const addresses = Object.values(resources).map((r) => r.triggers.address).sort();
    expect(addresses).toEqual([
      'customerio.segment.vip_customers',
      'customerio.segment.winback_eligible',
      'qualtrics.event_subscription.post_purchase_fit',
      'qualtrics.mailing_list.cancel_intent_reason',
      'qualtrics.mailing_list.lapsed_diagnosis',
      'qualtrics.mailing_list.post_purchase_fit',
    ]);
    const winback = Object.values(resources).find((r) => r.triggers.address === 'customerio.segment.winback_eligible')!;
    expect(winback.lifecycle?.prevent_destroy).toBe(true);
    const sub = Object.values(resources).find((r) => r.triggers.address === 'qualtrics.event_subscription.post_purchase_fit')!;
    expect(sub.depends_on).toEqual(['null_resource.qualtrics_mailing_list_post_purchase_fit']);
    expect(tf.provider).toHaveProperty('null');
  });
});
