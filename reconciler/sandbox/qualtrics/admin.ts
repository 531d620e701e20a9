/**
 * Seeding and inspection over HTTP, for clients that are not in-process (see README.md). These routes
 * are sandbox-only, sit outside `/API/v3`, need no token, are never rate limited, and answer plain JSON
 * (`{...}` on success, `{"error":{"message"}}` with 400/404 otherwise), not the Qualtrics envelope.
 */
import type { SandboxRequest, SandboxResponse } from '../common/types.ts';
import type { QualtricsEmulator } from './emulator.ts';
import { SeedError } from './seed.ts';
import { configSchema } from './state.ts';

export const ADMIN_PREFIX = '/__sandbox/qualtrics';

class AdminError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readJson(req: SandboxRequest): unknown {
  if (req.body.length === 0) return {};
  try {
    return JSON.parse(req.body.toString('utf8'));
  } catch {
    throw new AdminError(400, 'The body is not valid JSON.');
  }
}

const configPatchSchema = configSchema.partial().strict();

const ROUTES = [
  'GET    /__sandbox/qualtrics                          this list',
  'GET    /__sandbox/qualtrics/state                    snapshot of all state',
  'POST   /__sandbox/qualtrics/reset                    back to the initial state',
  'GET    /__sandbox/qualtrics/config                   current behaviour settings',
  'POST   /__sandbox/qualtrics/config                   change settings (partial object)',
  'POST   /__sandbox/qualtrics/directories              add an XM directory',
  'POST   /__sandbox/qualtrics/surveys                  add a survey',
  'POST   /__sandbox/qualtrics/surveys/{id}/responses   add responses: {"responses":[…]}',
  'POST   /__sandbox/qualtrics/surveys/{id}/embedded-data   edit the flow\'s embedded data: {"rename":{"old":"new"},"remove":[…],"add":[…]}',
  'POST   /__sandbox/qualtrics/jobs/settle              finish running imports and exports',
  'POST   /__sandbox/qualtrics/bounces                  a mail server reports a bounce: {"email"|"extRef"|"contactId", "directoryId"?, "at"?}',
  'GET    /__sandbox/qualtrics/webhooks/outbox          queued webhook deliveries',
  'POST   /__sandbox/qualtrics/webhooks/outbox/drain    return and empty the queue',
];

function route(emu: QualtricsEmulator, method: string, path: string, req: SandboxRequest): unknown {
  const key = `${method} ${path}`;
  switch (key) {
    case 'GET /':
      return { routes: ROUTES };
    case 'GET /state':
      return emu.snapshot();
    case 'POST /reset':
      emu.reset();
      return { reset: true, defaultDirectoryId: emu.defaultDirectoryId() };
    case 'GET /config':
      return emu.config();
    case 'POST /config': {
      const patch = configPatchSchema.safeParse(readJson(req));
      if (!patch.success) {
        const issue = patch.error.issues[0];
        throw new AdminError(400, `config: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`);
      }
      return emu.configure(patch.data);
    }
    case 'POST /directories':
      return { directoryId: emu.seedDirectory(readJson(req) as Parameters<QualtricsEmulator['seedDirectory']>[0]) };
    case 'POST /surveys':
      return { surveyId: emu.seedSurvey(readJson(req) as Parameters<QualtricsEmulator['seedSurvey']>[0]) };
    case 'POST /bounces':
      return { contactIds: emu.bounce(readJson(req) as Parameters<QualtricsEmulator['bounce']>[0]) };
    case 'POST /jobs/settle':
      emu.settleJobs();
      return { settled: true };
    case 'GET /webhooks/outbox':
      return { deliveries: emu.webhookOutbox() };
    case 'POST /webhooks/outbox/drain':
      return { deliveries: emu.drainWebhookOutbox() };
  }
  const responses = /^POST \/surveys\/([^/]+)\/responses$/.exec(key);
  if (responses) {
    const body = readJson(req);
    const list = typeof body === 'object' && body !== null && 'responses' in body ? body.responses : undefined;
    if (!Array.isArray(list)) throw new AdminError(400, 'Expected {"responses": [...]}.');
    const surveyId = decodeURIComponent(responses[1] ?? '');
    return { responseIds: emu.seedResponses(surveyId, list) };
  }
  const embedded = /^POST \/surveys\/([^/]+)\/embedded-data$/.exec(key);
  if (embedded) {
    const surveyId = decodeURIComponent(embedded[1] ?? '');
    const edit = readJson(req) as Parameters<QualtricsEmulator['editEmbeddedData']>[1];
    return { surveyId, embeddedData: emu.editEmbeddedData(surveyId, edit) };
  }
  throw new AdminError(404, `No sandbox admin route ${method} ${ADMIN_PREFIX}${path === '/' ? '' : path}`);
}

export function handleAdmin(emu: QualtricsEmulator, req: SandboxRequest): SandboxResponse {
  const path = req.url.pathname.slice(ADMIN_PREFIX.length).replace(/\/+$/, '') || '/';
  try {
    return { status: 200, json: route(emu, req.method.toUpperCase(), path, req) };
  } catch (err) {
    if (err instanceof AdminError) return { status: err.status, json: { error: { message: err.message } } };
    if (err instanceof SeedError) return { status: 400, json: { error: { message: err.message } } };
    throw err;
  }
}
