import { describe, expect, it } from 'vitest';
import { validateSpecs } from '../spec/validate.ts';
import { adoptionSite, kindsWithoutSites } from './adoption.ts';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const SPECS = path.resolve(import.meta.dirname, '../../specs');
const files = readdirSync(SPECS, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.yaml') && !f.startsWith('schema'))
  .map((f) => ({ path: `specs/${f}`, text: readFileSync(path.join(SPECS, f), 'utf8') }));
const model = validateSpecs(files).model!;

describe('adoption sites', () => {
  it('every config kind says where its attributes are declared', () => {
    expect(kindsWithoutSites()).toEqual([]);
  });

  it('points a list name and a segment description at their spec keys', () => {
    const list = adoptionSite(model, 'staging', 'qualtrics.mailing_list.post_purchase_fit', 'name');
    expect('spec' in list && [list.spec.pd.file, list.path]).toEqual(['specs/surveys.yaml', ['mailing_list', 'name']]);
    const segment = adoptionSite(model, 'staging', 'customerio.segment.vip_customers', 'description');
    expect('spec' in segment && [segment.spec.pd.file, segment.spec.name, segment.path]).toEqual(['specs/segments.yaml', 'vip_customers', ['description']]);
  });

  it.each([
    ['customerio.segment.vip_customers', 'name', /made from the segment's name/],
    ['qualtrics.mailing_list.post_purchase_fit', 'directory_id', /environments\.staging\.qualtrics\.directory_id in the Workspace\), shared by every list/],
    ['qualtrics.event_subscription.post_purchase_fit', 'publication_url', /responses_webhook_url in the Workspace\), shared by every subscription/],
    ['qualtrics.event_subscription.post_purchase_fit', 'topics', /survey id/],
    ['qualtrics.event_subscription.post_purchase_fit', 'shared_key', /never returns the shared key/],
    ['qualtrics.mailing_list.gone', 'name', /survey target gone is not declared/],
    ['other.kind.x', 'name', /does not know where/],
  ])('refuses %s %s, saying why', (address, attribute, why) => {
    const site = adoptionSite(model, 'staging', address, attribute);
    expect('refused' in site && site.refused).toMatch(why);
  });
});
