/**
 * Customer.io admin routes, mounted at `/__sandbox/customerio/…` on every sandbox listener:
 *
 *   POST /segments                 seed a segment: {id?: int (refused when taken), name, description?,
 *                                  type?: "dynamic"|"manual" (default dynamic), member_ids?: string[],
 *                                  id_type?: "id"|"email"|"cio_id", tags?: string[]}
 *   PUT  /segments/{id}/members    replace a segment's members: {member_ids, id_type?}
 *   GET  /people                   every person (inspection view)
 *   GET  /people/{identifier}      one person by id, email or cio_<cio_id>
 *   GET  /activity                 the activity log (writes accepted with 200 but not applied)
 *
 * Data-driven segments cannot be created through the public API, so seeding them here is how a test or a demo
 * gets a segment tidemark can reference but must never modify.
 */
import type { SandboxRequest, SandboxResponse } from '../common/types.ts';
import type { CustomerioEmulator, SeedSegmentInput } from './index.ts';
import { isPlainObject, readJson } from './http.ts';

function bad(status: number, message: string): SandboxResponse {
  return { status, json: { error: message } };
}

function seedInput(body: Record<string, unknown>): { ok: true; input: Omit<SeedSegmentInput, 'name'> } | { ok: false; message: string } {
  const ids = body.member_ids;
  if (ids !== undefined && (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string'))) {
    return { ok: false, message: 'member_ids must be an array of strings' };
  }
  const idType = body.id_type;
  if (idType !== undefined && idType !== 'id' && idType !== 'email' && idType !== 'cio_id') {
    return { ok: false, message: 'id_type must be id, email or cio_id' };
  }
  const type = body.type;
  if (type !== undefined && type !== 'dynamic' && type !== 'manual') return { ok: false, message: 'type must be dynamic or manual' };
  if (body.description !== undefined && typeof body.description !== 'string') return { ok: false, message: 'description must be a string' };
  const tags = body.tags;
  if (tags !== undefined && tags !== null && (!Array.isArray(tags) || !tags.every((x) => typeof x === 'string'))) {
    return { ok: false, message: 'tags must be an array of strings' };
  }
  return {
    ok: true,
    input: {
      ...(typeof body.description === 'string' ? { description: body.description } : {}),
      ...(type !== undefined ? { type } : {}),
      ...(ids !== undefined ? { memberIds: ids as string[] } : {}),
      ...(idType !== undefined ? { idType } : {}),
      ...(Array.isArray(tags) ? { tags: tags as string[] } : {}),
    },
  };
}

export async function handleCustomerioAdmin(emu: CustomerioEmulator, req: SandboxRequest, subpath: string): Promise<SandboxResponse | undefined> {
  const method = req.method;
  const parseBody = (): { ok: true; body: Record<string, unknown> } | { ok: false; res: SandboxResponse } => {
    const parsed = readJson(req);
    if (!parsed.ok) return { ok: false, res: bad(400, parsed.message) };
    if (!isPlainObject(parsed.value)) return { ok: false, res: bad(400, 'body must be a JSON object') };
    return { ok: true, body: parsed.value };
  };

  if (subpath === '/segments' && method === 'POST') {
    const body = parseBody();
    if (!body.ok) return body.res;
    if (typeof body.body.name !== 'string' || body.body.name.trim() === '') return bad(400, 'name is required');
    const input = seedInput(body.body);
    if (!input.ok) return bad(400, input.message);
    const id = body.body.id;
    if (id !== undefined && (typeof id !== 'number' || !Number.isInteger(id))) return bad(400, 'id must be an integer');
    try {
      return { status: 200, json: { segment: emu.seedSegment({ name: body.body.name, ...input.input, ...(id !== undefined ? { id } : {}) }) } };
    } catch (err) {
      return bad(400, err instanceof Error ? err.message : String(err));
    }
  }
  const members = /^\/segments\/(\d+)\/members$/.exec(subpath);
  if (members && method === 'PUT') {
    const body = parseBody();
    if (!body.ok) return body.res;
    const input = seedInput(body.body);
    if (!input.ok) return bad(400, input.message);
    try {
      const id = Number(members[1]);
      emu.setSegmentMembers(id, input.input.memberIds ?? [], input.input.idType ?? 'id');
      return { status: 200, json: { segment_id: id, count: emu.segmentMembers(id).length } };
    } catch (err) {
      return bad(400, err instanceof Error ? err.message : String(err));
    }
  }
  if (subpath === '/people' && method === 'GET') return { status: 200, json: { people: emu.listPeople() } };
  const person = /^\/people\/(.+)$/.exec(subpath);
  if (person && method === 'GET') {
    let identifier: string;
    try {
      identifier = decodeURIComponent(person[1]!);
    } catch {
      return bad(400, 'identifier is not valid percent-encoding');
    }
    const view = emu.getPerson(identifier);
    if (!view) return bad(404, `no person ${identifier}`);
    return { status: 200, json: { person: view, events: emu.eventsFor(identifier) } };
  }
  if (subpath === '/activity' && method === 'GET') return { status: 200, json: { activity: emu.activity() } };
  return undefined;
}
