/**
 * Where each attribute tidemark manages is declared in the specs, so `tidemark drift --adopt` can write
 * what is live back into the spec that asks for it. Pure.
 *
 * Only an attribute that one spec document says for one object can be adopted. Attributes derived from
 * the object's name, or shared by every object of an environment (the Workspace's directory or webhook
 * URL), are refused with why: writing them would rename the object or change others with it.
 */
import { parseAddress } from '../core/address.ts';
import type { Path } from '../core/diagnostics.ts';
import type { Located, SpecModel } from '../spec/model.ts';
import { CONFIG_KINDS } from './index.ts';

export type AdoptionSite = { spec: Located<unknown>; path: Path } | { refused: string };

type Locate = (model: SpecModel, name: string, attribute: string, environment: string) => AdoptionSite;

const notDeclared = (what: string): AdoptionSite => ({ refused: `${what} is not declared in the specs any more` });

/** Per config kind: the spec document and key each attribute comes from. */
export const ADOPTION_SITES: Readonly<Record<string, Locate>> = {
  'customerio.segment': (model, name, attribute) => {
    const spec = model.segments.get(name);
    if (!spec) return notDeclared(`segment ${name}`);
    if (attribute === 'description') return { spec, path: ['description'] };
    if (attribute === 'name') {
      return { refused: `its name in Customer.io is made from the segment's name (tidemark: ${name}); adopting it would make it another segment: rename it back in Customer.io, or let apply report it` };
    }
    return { refused: `${attribute} is not declared by a segment spec` };
  },
  'qualtrics.mailing_list': (model, name, attribute, environment) => {
    const spec = model.surveyTargets.get(name);
    if (!spec) return notDeclared(`survey target ${name}`);
    if (attribute === 'name') return { spec, path: ['mailing_list', 'name'] };
    if (attribute === 'directory_id') {
      return { refused: `the directory is the environment's (environments.${environment}.qualtrics.directory_id in the Workspace), shared by every list: change it there by hand if the lists really moved` };
    }
    return { refused: `${attribute} is not declared by a survey target spec` };
  },
  'qualtrics.event_subscription': (model, name, attribute, environment) => {
    if (!model.surveyTargets.get(name)) return notDeclared(`survey target ${name}`);
    if (attribute === 'topics') return { refused: `its topic is made from the survey target's survey id; change \`survey:\` by hand if the target should read another survey` };
    if (attribute === 'publication_url') {
      return { refused: `the URL is the environment's (environments.${environment}.qualtrics.responses_webhook_url in the Workspace), shared by every subscription: change it there by hand` };
    }
    if (attribute === 'shared_key') return { refused: 'Qualtrics never returns the shared key, so it cannot be written back: apply replaces the subscription with the current key' };
    return { refused: `${attribute} is not declared by a survey target spec` };
  },
};

/** Where `attribute` of the object at `address` is declared, or why it cannot be adopted. */
export function adoptionSite(model: SpecModel, environment: string, address: string, attribute: string): AdoptionSite {
  const a = parseAddress(address);
  const locate = a?.provider ? ADOPTION_SITES[`${a.provider}.${a.type}`] : undefined;
  if (!a || !locate) return { refused: `tidemark does not know where ${address}'s attributes are declared` };
  return locate(model, a.name, attribute, environment);
}

/** Every config kind has its sites (a new kind without them fails kinds/adoption.test.ts). */
export function kindsWithoutSites(): string[] {
  return CONFIG_KINDS.map((k) => k.kind).filter((k) => !(k in ADOPTION_SITES));
}
