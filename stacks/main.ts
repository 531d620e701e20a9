/**
 * Terraform export: the same desired config plane the reconciler manages, as a cdktf app with one stack
 * per environment and a null_resource per managed object (its triggers carry the desired attributes).
 *
 * This is an edge, never the engine: CDKTF was deprecated upstream in December 2025, so nothing outside
 * stacks/ imports it. Use it to feed Terraform-based review tooling or policy checks.
 *
 *   npx tsx stacks/main.ts            # synthesises into stacks/cdktf.out (or $CDKTF_OUTDIR)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { NullProvider } from '@cdktf/provider-null/lib/provider/index.js';
import { Resource } from '@cdktf/provider-null/lib/resource/index.js';
import { formatAddress } from '../reconciler/core/address.ts';
import { desiredResources } from '../reconciler/kinds/index.ts';
import type { DesiredResource } from '../reconciler/plan/desired.ts';
import { creationOrder } from '../reconciler/plan/order.ts';
import { loadSpecs } from '../reconciler/spec/load.ts';
import type { SpecModel } from '../reconciler/spec/model.ts';

export class EnvironmentStack extends TerraformStack {
  constructor(scope: Construct, id: string, resources: DesiredResource[]) {
    super(scope, id);
    new NullProvider(this, 'null');
    const byAddress = new Map<string, Resource>();
    for (const r of creationOrder(resources)) {
      const key = formatAddress(r.address);
      const res = new Resource(this, key.replace(/\./g, '_'), {
        triggers: Object.fromEntries(
          Object.entries({ address: key, ...r.attributes }).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
        ),
        dependsOn: r.dependsOn.map((d) => byAddress.get(formatAddress(d))).filter((x): x is Resource => x !== undefined),
        lifecycle: r.preventDestroy ? { preventDestroy: true } : undefined,
      });
      byAddress.set(key, res);
    }
    new TerraformOutput(this, 'managed_objects', { value: resources.map((r) => formatAddress(r.address)) });
  }
}

export function buildApp(model: SpecModel, outdir: string): App {
  const app = new App({ outdir });
  for (const env of Object.keys(model.workspace?.spec.environments ?? {}).sort()) {
    new EnvironmentStack(app, `tidemark-${env}`, desiredResources(model, env));
  }
  return app;
}

async function run(): Promise<number> {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const result = await loadSpecs(process.env.TIDEMARK_SPECS ?? 'specs', repo);
  if (!result.model) {
    for (const d of result.diagnostics.filter((x) => x.severity === 'error')) {
      process.stderr.write(`${d.source?.file}:${d.source?.start.line}:${d.source?.start.col}: ${d.code} ${d.summary}\n`);
    }
    return 1;
  }
  buildApp(result.model, process.env.CDKTF_OUTDIR ?? path.join(repo, 'stacks/cdktf.out')).synth();
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await run();
}
