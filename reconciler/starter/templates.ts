/**
 * The files `tidemark init` gives a team's own repository, as text. Pure: the caller passes in the
 * workflows tidemark ships (read from the installed package) and decides what to write.
 *
 * The starter validates and plans as written: its example source reads a CSV it brings along, and its
 * example segment is published, so the first plan shows an object to create. Both apply to `staging`
 * only, so merging the starter can never send example people or segments to production.
 */
import path from 'node:path';
import { Name } from '../spec/schema/common.ts';
import { modelineFor } from '../spec/json-schema.ts';

export interface StarterFile {
  /** Relative to the repository, with `/` separators. */
  path: string;
  text: string;
}

export interface StarterOptions {
  /** The Workspace name (snake_case). */
  name: string;
  /** `README.md`, or `TIDEMARK.md` when the repository already has a README of its own. */
  readme: string;
  /** File name (`plan.yml`) → text of the workflows tidemark ships in `.github/workflows/`. */
  workflows: ReadonlyMap<string, string>;
  /** tidemark's version, named in the README the starter writes. */
  version: string;
}

/** The workflows a team's repository gets; ci.yml is tidemark's own test run and stays home. */
export const STARTER_WORKFLOWS = ['plan.yml', 'plan-production.yml', 'apply.yml', 'sync.yml', 'drift.yml'] as const;

/** What a team's .gitignore needs: dependencies, and the local state and sandbox data tidemark keeps. */
export const IGNORED = ['node_modules/', '.tidemark/'] as const;

/**
 * Schemas come from the installed package, so upgrading tidemark upgrades what editors check against.
 * The path is relative to each spec file, as yaml-language-server resolves it.
 */
const SCHEMA_DIR = 'node_modules/tidemark/specs/schema';

export const EXAMPLE_DATA = 'specs/data/example_customers.csv';

/** `true`, or why `name` cannot be a Workspace name. */
export function checkWorkspaceName(name: string): true | string {
  const r = Name.safeParse(name);
  return r.success ? true : (r.error.issues[0]?.message ?? 'not a valid name');
}

/** A Workspace name from a folder name: `Acme Retention` → `acme_retention`. */
export function workspaceNameFrom(folder: string): string {
  const snake = folder
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^[^a-z]+/, '')
    .replace(/_+$/, '')
    .slice(0, 100)
    .replace(/_+$/, '');
  return snake === '' ? 'my_workspace' : snake;
}

function modeline(kind: string, file: string): string {
  return modelineFor(kind, path.posix.relative(path.posix.dirname(file), SCHEMA_DIR));
}

/**
 * A shipped workflow as a team's repository runs it. The shipped ones already call `npx tidemark`; a
 * `node bin/tidemark.js` would only work inside tidemark's own repository, so it is rewritten too.
 */
export function teamWorkflow(file: string, text: string): string {
  const body = text
    .replace(/^# For users of tidemark: (\w)/, (_m, first: string) => `# ${first.toUpperCase()}`)
    .replaceAll('node bin/tidemark.js', 'npx tidemark');
  return `# Written by \`tidemark init\` from tidemark's own ${file}; adapt it freely.\n${body}`;
}

/**
 * .gitignore text with the entries tidemark needs added, or undefined when nothing is missing. A line
 * that already ignores the same folder (with or without slashes) counts.
 */
export function gitignoreWith(existing: string | undefined): string | undefined {
  const present = new Set(
    (existing ?? '')
      .split(/\r?\n/)
      .map((l) => l.trim().replace(/^\//, '').replace(/\/$/, ''))
      .filter((l) => l !== '' && !l.startsWith('#')),
  );
  const missing = IGNORED.filter((e) => !present.has(e.replace(/\/$/, '')));
  if (missing.length === 0) return undefined;
  const base = existing === undefined || existing === '' ? '' : existing.endsWith('\n') ? existing : `${existing}\n`;
  return `${base}${base ? '\n' : ''}# tidemark: dependencies, and the local state and sandbox data (.tidemark/)\n${missing.join('\n')}\n`;
}

export function starterFiles(o: StarterOptions): StarterFile[] {
  const files: StarterFile[] = [
    { path: 'specs/workspace.yaml', text: workspaceYaml(o.name) },
    { path: 'specs/fields.yaml', text: fieldsYaml() },
    { path: 'specs/segments.yaml', text: segmentsYaml() },
    { path: 'specs/sources/example.yaml', text: sourceYaml() },
    { path: EXAMPLE_DATA, text: exampleCsv() },
  ];
  for (const file of STARTER_WORKFLOWS) {
    const text = o.workflows.get(file);
    if (text !== undefined) files.push({ path: `.github/workflows/${file}`, text: teamWorkflow(file, text) });
  }
  files.push({ path: o.readme, text: teamReadme(o) });
  return files;
}

function workspaceYaml(name: string): string {
  const file = 'specs/workspace.yaml';
  return `${modeline('Workspace', file)}
# Where tidemark connects, per environment, and how it recognises people. Credentials are never written
# here: each *_env key names the environment variable (or GitHub secret) that holds the value.
kind: Workspace
name: ${name}
identity:
  primary: id          # your own immutable customer id; use email if Customer.io identifies people by email
normalization:
  email: { trim: true, lowercase: true }
environments:
  staging:
    description: A Customer.io workspace for trying changes; pull requests plan against it.
    customerio:
      region: us       # us or eu: the data center your Customer.io account is in
      site_id_env: CIO_STAGING_SITE_ID
      track_api_key_env: CIO_STAGING_TRACK_API_KEY
      app_api_key_env: CIO_STAGING_APP_API_KEY
    # With Qualtrics (Account Settings > Qualtrics IDs shows the datacenter; the directory id starts with POOL_):
    # qualtrics:
    #   datacenter: iad1
    #   directory_id: POOL_replaceWithYours
    #   api_token_env: QUALTRICS_STAGING_API_TOKEN
  production:
    protected: true    # never falls back to the sandbox; CI applies only a saved plan someone approved
    customerio:
      region: us
      # its credentials are in CUSTOMERIO_SITE_ID, CUSTOMERIO_TRACK_API_KEY and CUSTOMERIO_APP_API_KEY (the defaults)
    # qualtrics:
    #   datacenter: iad1
    #   directory_id: POOL_replaceWithYours   # token in QUALTRICS_API_TOKEN (the default)
default_environment: staging
state:
  # On your machine the state lives in .tidemark/ (git-ignored). In CI, TIDEMARK_DATABASE_URL (a
  # PostgreSQL database) takes precedence, so every run sees what the previous one applied.
  backend: embedded
  path: .tidemark
`;
}

function fieldsYaml(): string {
  return `${modeline('Fields', 'specs/fields.yaml')}
# Every attribute and event your specs write or read, and the one system that owns each.
kind: Fields
name: customer
fields:
  email:
    type: string
    format: email
    nature: identifier
    owner: example_crm
    pii: true
  plan:
    type: enum
    values: [free, pro, enterprise]
    nature: state
    owner: example_crm
    updated_at: plan_updated_at
    description: The customer's current plan (an example field; replace it with yours).
  plan_updated_at:
    type: timestamp
    owner: example_crm
`;
}

function segmentsYaml(): string {
  return `${modeline('Segment', 'specs/segments.yaml')}
# An example audience, published to a Customer.io manual segment named "tidemark: pro_customers".
# It applies to staging only until you remove the environments line.
kind: Segment
name: pro_customers
description: Customers on the pro plan (an example from tidemark init).
environments: [staging]
conditions:
  attribute: { field: plan, op: eq, value: pro }
publish:
  customerio_segment: true
`;
}

function sourceYaml(): string {
  return `${modeline('Source', 'specs/sources/example.yaml')}
# An example sync: people and their plan from a CSV file, into Customer.io. Point the connector at your
# warehouse (type: postgres, url_env, query) or your own export. Staging only, so example people never
# reach production.
kind: Source
name: example_customers
system: example_crm
environments: [staging]
connector:
  type: csv
  path: ${EXAMPLE_DATA}   # relative to the repository root
schedule: "0 5 * * *"   # cron, UTC
records: person
identity: { column: customer_id, as: id }
ordering: updated_at
timezone: UTC
fields:
  email: email
  plan: plan
  plan_updated_at: updated_at
freshness: { max_age: 26h }
latency_needed: daily
`;
}

function exampleCsv(): string {
  return [
    'customer_id,email,plan,updated_at',
    '1001,ada@example.com,pro,2026-01-05 04:00:00',
    '1002,grace@example.com,free,2026-01-06 04:00:00',
    '1003,katherine@example.com,enterprise,2026-01-07 04:00:00',
    '',
  ].join('\n');
}

function teamReadme(o: StarterOptions): string {
  return `# ${o.name}: Customer.io and Qualtrics setup as code

This repository holds the retention setup of **${o.name}** as YAML specs, checked and applied by
tidemark (${o.version} when this file was written). Changes go through pull requests: each one
gets a plan as a comment, and merging applies the reviewed plan to production after approval.

The walk-through from a Customer.io account to reviewed pull requests is
\`node_modules/tidemark/docs/getting-started.md\`.

## What is here

| path | what it is |
|---|---|
| \`specs/workspace.yaml\` | environments (\`staging\`, \`production\`), the variables that hold their credentials, the state |
| \`specs/fields.yaml\` | every attribute and event, with the system that owns it |
| \`specs/segments.yaml\` | audiences; \`pro_customers\` is an example |
| \`specs/sources/example.yaml\` | an example sync from \`${EXAMPLE_DATA}\` |
| \`.github/workflows/plan.yml\` | on a pull request: validate, plan (staging, or the sandbox), post the plan |
| \`.github/workflows/apply.yml\` | on merge to main: plan production, wait for approval, apply that plan |
| \`.github/workflows/sync.yml\` | every 15 minutes: run the due syncs, check freshness |
| \`.github/workflows/drift.yml\` | nightly: report changes made outside tidemark |

The example segment and source apply to \`staging\` only (\`environments: [staging]\`): replace them with
your own before removing that line.

## Every day

\`\`\`sh
npx tidemark validate          # schema, references and policy rules
npx tidemark plan              # what apply would change (the embedded sandbox until credentials are set)
npx tidemark sync plan example_customers   # what a sync would send, without sending
\`\`\`

Without credentials, outside CI, commands run on the **embedded sandbox** (emulated Customer.io and
Qualtrics under \`.tidemark/\`); every output says where it ran (\`Against:\`).

## Credentials

| variable | environment | what it is |
|---|---|---|
| \`CIO_STAGING_SITE_ID\`, \`CIO_STAGING_TRACK_API_KEY\` | staging | a Track API key pair of the staging workspace |
| \`CIO_STAGING_APP_API_KEY\` | staging | an App API key of the staging workspace |
| \`CUSTOMERIO_SITE_ID\`, \`CUSTOMERIO_TRACK_API_KEY\`, \`CUSTOMERIO_APP_API_KEY\` | production | the same, for production |
| \`QUALTRICS_STAGING_API_TOKEN\`, \`QUALTRICS_API_TOKEN\` | staging, production | only once \`qualtrics:\` is declared |
| \`TIDEMARK_DATABASE_URL\` | CI | the PostgreSQL database that holds production's state |

Set them in your shell to run against staging from your machine. Never commit them.

## GitHub setup

1. Repository secrets (Settings > Secrets and variables > Actions): the staging ones above, and
   \`TIDEMARK_STAGING_DATABASE_URL\` for staging's state. Pull requests only ever see these.
2. Environment \`production\` (Settings > Environments) with **required reviewers**: it holds the
   production secrets and \`TIDEMARK_DATABASE_URL\`; apply.yml waits there for approval of the plan.
3. Environment \`production-jobs\` with deployment branches limited to \`main\` and no reviewers: the same
   production secrets (and \`WAREHOUSE_URL\` if a source reads your warehouse), for plan, sync and drift.
4. Label \`allow-delete\`: deletes are planned only for a pull request that carries it.
`;
}
