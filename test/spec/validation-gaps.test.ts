/**
 * What validation used to let through (issue 8, point 7): schedules and times, fields, line endings and
 * secrets. Each case is checked against the clean base spec set, so it fails only because of its mistake.
 */
import { describe, expect, it } from 'vitest';
import { baseSpecs, toFiles, type SpecSet } from '../support/spec-fixtures.ts';
import { validateSpecs, type SpecFile } from '../../reconciler/spec/validate.ts';

function run(mutate: (s: SpecSet) => void) {
  const s = baseSpecs();
  mutate(s);
  return validateSpecs(toFiles(s));
}

const lines = (files: SpecFile[]) =>
  validateSpecs(files).diagnostics.map((d) => `${d.source?.file}:${d.source?.start.line}:${d.source?.start.col} ${d.severity} ${d.code} ${d.summary}`);

const src = (s: SpecSet) => s.sources[0]!;

describe('schedules and times', () => {
  it('the base set is clean', () => {
    expect(validateSpecs(toFiles(baseSpecs())).diagnostics).toEqual([]);
  });

  it('a cron that never fires is a located error', () => {
    const r = run((s) => { src(s).schedule = '0 4 30 2 *'; });
    const d = r.diagnostics.find((x) => x.code === 'SYNC008');
    expect(d?.severity).toBe('error');
    expect(d?.summary).toBe('"0 4 30 2 *" never fires: no date in the next five years matches its day and month fields.');
    expect(d?.source).toMatchObject({ file: 'specs/sources.yaml', start: { line: 8, col: 11 } });
    expect(r.model).toBeUndefined();
    expect(run((s) => { src(s).schedule = '30 4 29 2 *'; }).diagnostics.map((x) => x.code)).not.toContain('SYNC008');
  });

  it.each(['Mars/Phobos', 'America/New York', 'EST5EDT ', 'utc+2'])('an unknown IANA timezone (%j) is SPEC003 on the key', (zone) => {
    const r = run((s) => { src(s).timezone = zone; });
    const d = r.diagnostics.find((x) => x.code === 'SPEC003');
    expect(d?.summary).toMatch(/^"timezone": not a known IANA time zone/);
    expect(d?.path).toEqual(['timezone']);
    expect(r.model).toBeUndefined();
  });

  it.each(['UTC', 'America/New_York', 'Europe/Berlin', 'US/Eastern', 'Etc/GMT+5'])('a zone the runtime knows (%s) is accepted', (zone) => {
    expect(run((s) => { src(s).timezone = zone; }).diagnostics).toEqual([]);
  });

  it('an event window with its bounds reversed is an error; the right way round is clean', () => {
    const reversed = run((s) => { s.segments[1]!.conditions = { event: { name: 'order_delivered', from: '30d', to: '1d' } }; });
    const d = reversed.diagnostics.find((x) => x.code === 'SPEC003');
    expect(d?.summary).toMatch(/^"conditions\.event\.to": the window is reversed: from is the more recent age/);
    expect(d?.source).toMatchObject({ file: 'specs/segments.yaml' });
    const empty = run((s) => { s.segments[1]!.conditions = { not: { event: { name: 'order_delivered', from: '3d', to: '3d' } } }; });
    expect(empty.diagnostics.map((x) => x.summary)).toContainEqual(expect.stringMatching(/the window is empty/));
    const right = run((s) => { s.segments[1]!.conditions = { event: { name: 'order_delivered', from: '1d', to: '30d' } }; });
    expect(right.diagnostics.filter((x) => x.code.startsWith('SPEC'))).toEqual([]);
  });
});

describe('fields', () => {
  it('an enum with no values (empty or missing) is an error on its values', () => {
    const empty = run((s) => { s.fields.fields.category.values = []; });
    expect(empty.diagnostics.map((d) => `${d.code} ${d.summary}`)).toContain('SPEC003 "fields.category.values": an enum needs its allowed values, e.g. values: [none, gold].');
    const missing = run((s) => { delete s.fields.fields.category.values; });
    expect(missing.diagnostics.map((d) => d.code)).toContain('SPEC003');
    expect(missing.model).toBeUndefined();
  });

  it('a key named __proto__ is a clear, located error, not silently dropped', () => {
    const text = 'kind: Fields\nname: extra\nfields:\n  __proto__: { type: string, owner: shop }\n';
    const out = lines([...toFiles(baseSpecs()), { path: 'specs/extra.yaml', text }]);
    expect(out).toEqual(['specs/extra.yaml:4:3 error SPEC003 "__proto__" cannot be used as a key or a name: use snake_case starting with a letter.']);
  });

  it('names that are Object.prototype members (constructor, toString) work like any other name', () => {
    const r = run((s) => {
      s.fields.fields.constructor = { type: 'string', owner: 'shop' };
      src(s).fields.constructor = 'ctor_column';
      s.workspace.environments.constructor = { customerio: { region: 'eu' } };
      s.segments.push({ kind: 'Segment', name: 'to_string', conditions: { attribute: { field: 'constructor', op: 'exists' } }, environments: ['constructor'] });
      s.surveys[0]!.product_type = 'constructor';
      s.surveys.push({ ...s.surveys[0]!, name: 'other', product_type: 'toString', mailing_list: { name: 'other' } });
    });
    expect(r.diagnostics).toEqual([]);
    expect(r.model?.fields.get('constructor')?.def.type).toBe('string');
    expect(r.model?.sources.get('orders')?.spec.fields.constructor).toBe('ctor_column');
    expect(Object.keys(r.model!.workspace!.spec.environments)).toContain('constructor');
    // An environment that is not declared is still unknown, even when Object.prototype has a member of that name.
    const unknown = run((s) => { s.segments[0]!.environments = ['constructor']; });
    expect(unknown.diagnostics.map((d) => d.code)).toContain('REF005');
  });
});

describe('line endings', () => {
  const lf = toFiles(baseSpecs()).map((f) => ({ ...f, text: `# yaml-language-server: $schema=./schema/tidemark.json\n${f.text}` }));

  it.each([
    ['CR-only', '\r'],
    ['CRLF', '\r\n'],
  ])('a %s file validates to the same model, at the same lines, as the LF file', (_name, eol) => {
    const converted = lf.map((f) => ({ ...f, text: f.text.replace(/\n/g, eol) }));
    const a = validateSpecs(lf);
    const b = validateSpecs(converted);
    expect(b.diagnostics).toEqual([]);
    const summary = (r: typeof a) => ({
      fields: [...r.model!.fields.keys()],
      sources: [...r.model!.sources.values()].map((s) => s.spec),
      segments: [...r.model!.segments.values()].map((s) => s.spec),
      surveys: [...r.model!.surveyTargets.values()].map((s) => s.spec),
    });
    expect(summary(b)).toEqual(summary(a));
    expect(b.model!.sources.size).toBe(2);
    // Lines are counted the way an editor shows them: a finding lands on the same line either way.
    const broken = (files: SpecFile[]) => lines(files.map((f) => (f.path === 'specs/sources.yaml' ? { ...f, text: f.text.replace('schedule: 5 * * * *', 'schedule: 0 4 30 2 *') } : f)));
    expect(broken(converted)).toEqual(broken(lf));
    expect(broken(lf)).toHaveLength(1);
  });

  it('a non-empty file with nothing but comments is a warning, so a lost spec does not go unnoticed', () => {
    const out = lines([...toFiles(baseSpecs()), { path: 'specs/notes.yaml', text: '# yaml-language-server: $schema=./schema/tidemark.json\n# kind: Segment\n---\n' }]);
    expect(out).toEqual(['specs/notes.yaml:1:1 warning SPEC007 This file declares nothing: it holds only comments or empty documents.']);
    expect(lines([...toFiles(baseSpecs()), { path: 'specs/empty.yaml', text: '' }])).toEqual([]);
  });
});

describe('secrets', () => {
  const secret = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
  const noSecretShown = (r: ReturnType<typeof validateSpecs>) => {
    const all = JSON.stringify(r);
    expect(all.replace(/"text":"(?:[^"\\]|\\.)*"/g, '')).not.toContain(secret.slice(8));
  };

  it('a secret in a comment is SEC001 on that line, without printing it', () => {
    const files = toFiles(baseSpecs());
    files[2] = { ...files[2]!, text: files[2]!.text.replace('schedule:', `# old key, api_key: ${secret}\nschedule:`) };
    const out = lines(files);
    expect(out).toEqual([expect.stringMatching(/^specs\/sources\.yaml:8:1 error SEC001 This looks like an API secret key \(in a comment\) written into the spec\.$/)]);
    const r = validateSpecs(files);
    expect(r.model).toBeUndefined();
    noSecretShown(r);
    const ghp = lines([...toFiles(baseSpecs()), { path: 'specs/x.yaml', text: '# token ghp_16C7e42F292c6912E7710c838347Ae178B4a\n' }]);
    expect(ghp.filter((l) => l.includes('SEC001'))).toEqual(['specs/x.yaml:1:1 error SEC001 This looks like a GitHub token (in a comment) written into the spec.']);
  });

  it('a secret in a document that is not valid YAML is still found, on its line', () => {
    const text = `kind: Segment\nname: broken\ndescription: "export key ${secret}"\nconditions: { attribute: { field: order_count, op: gt, value: 1 }\n---\nkind: Segment\nname: fine\nconditions: { attribute: { field: order_count, op: gt, value: 2 } }\n`;
    const out = lines([...toFiles(baseSpecs()), { path: 'specs/broken.yaml', text }]);
    expect(out).toContainEqual('specs/broken.yaml:3:1 error SEC001 This looks like an API secret key (in a document that is not valid YAML) written into the spec.');
    expect(out.filter((l) => l.includes('SEC001'))).toHaveLength(1);
    expect(out.some((l) => l.includes('SPEC001'))).toBe(true);
  });

  it('the schema comment every spec starts with is not a secret', () => {
    const files = toFiles(baseSpecs()).map((f) => ({ ...f, text: `# yaml-language-server: $schema=./schema/tidemark.json\n# Owner: crm team, see https://example.com/wiki?page=specs\n${f.text}` }));
    expect(validateSpecs(files).diagnostics).toEqual([]);
  });

  it('a secret used as a map key is found, and neither its path nor an unknown-key message shows it', () => {
    const r = run((s) => { src(s).fields[secret] = 'x'; s.surveys[0]![secret] = true; });
    const hits = r.diagnostics.filter((d) => d.code === 'SEC001');
    expect(hits).toHaveLength(2);
    expect(hits[0]!.summary).toBe('This looks like an API secret key (as a key) written into the spec.');
    noSecretShown(r);
  });

  it('a secret in a value where the schema wants something else is not echoed by the schema error', () => {
    const r = run((s) => { src(s).connector.url_env = secret; });
    expect(r.diagnostics.map((d) => d.code).sort()).toEqual(['SEC001', 'SPEC003']);
    noSecretShown(r);
  });

  it('SEC001 cannot be switched off, downgraded or suppressed: trying is an error where it is written', () => {
    for (const level of ['off', 'warning']) {
      const r = run((s) => { src(s).description = `key ${secret}`; s.workspace.policy = { SEC001: level }; });
      expect(r.diagnostics.map((d) => `${d.severity} ${d.code}`).sort()).toEqual(['error SEC001', 'error SPEC003']);
      expect(r.diagnostics.find((d) => d.code === 'SPEC003')?.summary).toBe(`policy: SEC001 cannot be set to ${level}: it is always an error.`);
      expect(r.model).toBeUndefined();
    }
    const suppressed = run((s) => { src(s).description = `key ${secret}`; src(s).suppress = { SEC001: 'it is only the test key, honestly' }; });
    expect(suppressed.suppressed).toEqual([]);
    expect(suppressed.diagnostics.map((d) => `${d.code} ${d.summary}`)).toContain('SPEC003 suppress: SEC001 cannot be accepted on a spec: it is always an error.');
    expect(suppressed.diagnostics.map((d) => d.code)).toContain('SEC001');
    // Even with no secret left, the attempt itself stays an error.
    expect(run((s) => { s.workspace.policy = { SEC001: 'off' }; }).diagnostics.map((d) => d.code)).toEqual(['SPEC003']);
    expect(run((s) => { s.workspace.policy = { SEC001: 'error' }; }).diagnostics).toEqual([]);
  });

  it.each([
    ['https://hooks.example.com/q?token=Zq81xPl2aa', 'a token in a URL query string'],
    ['https://hooks.example.com/q?x=1&access_token=Zq81xPl2aa', 'a token in a URL query string'],
    ['https://hooks.example.com/q?api_key=Zq81xPl2aa', 'a token in a URL query string'],
    ['https://hooks.example.com/q?key=Zq81xPl2aa', 'a token in a URL query string'],
    ['https://bob:hunter22@hooks.example.com/q', 'a URL with an embedded password'],
  ])('a credential in a webhook URL (%s) is SEC001 at the URL', (url, what) => {
    const r = run((s) => { s.workspace.environments.production.qualtrics = { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: url }; });
    const d = r.diagnostics.find((x) => x.code === 'SEC001');
    expect(d?.summary).toBe(`This looks like ${what} written into the spec.`);
    expect(d?.path).toEqual(['environments', 'production', 'qualtrics', 'responses_webhook_url']);
    expect(JSON.stringify(r.diagnostics)).not.toContain('Zq81xPl2aa');
    expect(JSON.stringify(r.diagnostics)).not.toContain('hunter22');
  });

  it('an http:// webhook is an error unless it goes to this machine', () => {
    const withUrl = (url: string) => run((s) => {
      s.workspace.environments.production.qualtrics = { datacenter: 'iad1', directory_id: 'POOL_abc123', responses_webhook_url: url };
      s.surveys[0]!.responses.webhook = true;
    });
    const plain = withUrl('http://hooks.example.com/q');
    expect(plain.diagnostics.filter((d) => d.code === 'SEC002').map((d) => d.summary)).toEqual([
      'Responses of "fit" would be delivered over plain http in environment production.',
      'The responses webhook of environment "production" uses http:// to a host that is not this machine.',
    ]);
    for (const ok of ['https://hooks.example.com/q', 'http://127.0.0.1:4011/q', 'http://localhost/q', 'http://[::1]:8080/q']) {
      expect(withUrl(ok).diagnostics.map((d) => d.code), ok).not.toContain('SEC002');
    }
  });
});

describe('retired keys', () => {
  it('stamp_last_synced is refused, at its line, saying what replaced it and why', () => {
    const r = run((s) => { src(s).stamp_last_synced = 'last_seen_at'; });
    const d = r.diagnostics.find((x) => x.code === 'SPEC003');
    expect(d?.severity).toBe('error');
    expect(d?.summary).toMatch(/stamp_last_synced was renamed stamp_last_sent: it stamps the people a run sends, not everyone it read/);
    expect(d?.source?.file).toBe('specs/sources.yaml');
  });
});
