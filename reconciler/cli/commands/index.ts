import type { Command } from '../command.ts';

/**
 * Every CLI command, in the order `tidemark --help` lists them. Modules load only when their command
 * runs: `tidemark --help` or `validate` need not load the API clients, the sandbox or the state store.
 * (A test checks each summary here matches the command's own.)
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

export const commands: CommandEntry[] = [
  { name: 'init', summary: "Start a team's repository: starter specs, GitHub workflows and a README (never overwrites)", load: async () => (await import('./init.ts')).initCommand },
  { name: 'start', summary: 'Run the main job: validate, plan, apply, sync what is due, check freshness (on the sandbox without credentials)', load: async () => (await import('./start.ts')).startCommand },
  { name: 'validate', summary: 'Check the specs: schema, references and policy rules (exit 0 clean, 1 on errors)', load: async () => (await import('./validate.ts')).validateCommand },
  { name: 'plan', summary: 'Show what apply would change in Customer.io and Qualtrics', load: async () => (await import('./plan.ts')).planCommand },
  { name: 'apply', summary: 'Apply the changes (a fresh plan after approval, or exactly a saved plan)', load: async () => (await import('./apply.ts')).applyCommand },
  { name: 'drift', summary: 'Show what changed in Customer.io or Qualtrics outside tidemark', load: async () => (await import('./drift.ts')).driftCommand },
  { name: 'import', summary: 'Adopt an existing Customer.io or Qualtrics object under a declared address', load: async () => (await import('./import.ts')).importCommand },
  { name: 'state', summary: 'List the objects tidemark manages; release prevent_destroy; show apply history', load: async () => (await import('./state.ts')).stateCommand },
  { name: 'unlock', summary: 'Show who holds the apply lock, and release it', load: async () => (await import('./unlock.ts')).unlockCommand },
  { name: 'sync', summary: 'Plan or run scheduled syncs into Customer.io (only new and changed rows are sent)', load: async () => (await import('./sync.ts')).syncCommand },
  { name: 'audiences', summary: 'Evaluate the declared segments from what Customer.io acknowledged; plan shows counts, run publishes', load: async () => (await import('./audiences.ts')).audiencesCommand },
  { name: 'surveys', summary: 'Who each survey target invites now (plan: counts only), and sending them through Qualtrics (run)', load: async () => (await import('./surveys.ts')).surveysCommand },
  { name: 'responses', summary: 'Pull survey responses from Qualtrics and write their reason codes to Customer.io (counts only); serve: receive them by webhook', load: async () => (await import('./responses.ts')).responsesCommand },
  { name: 'status', summary: 'Freshness of every source against its SLO, last runs and rejected-row rates; alerts', load: async () => (await import('./status.ts')).statusCommand },
  { name: 'rules', summary: 'List the policy rules: code, default severity and the harm each prevents', load: async () => (await import('./rules.ts')).rulesCommand },
  { name: 'schema', summary: 'Write (or check) the JSON Schemas in specs/schema/ generated from the spec model', load: async () => (await import('./schema.ts')).schemaCommand },
  { name: 'github', summary: 'The GitHub side: the plan as a sticky PR comment, the reviewed plan applied on merge, problems as issues, drift as a PR', load: async () => (await import('./github.ts')).githubCommand },
  { name: 'sandbox', summary: 'Start the emulated Customer.io and Qualtrics APIs on 127.0.0.1 and print their environment', load: async () => (await import('./sandbox.ts')).sandboxCommand },
];
