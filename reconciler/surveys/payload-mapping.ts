/**
 * The field mapping checked against the survey itself (issue 12, point 3). Pure: the survey definition
 * comes in as the value `GET /survey-definitions/{id}` returned; nothing here calls Qualtrics.
 *
 * A SurveyTarget sends its `payload` fields as embedded data on each contact. The survey reads embedded
 * data through the EmbeddedData elements of its flow (`SurveyFlow.Flow[]`, elements of `Type:
 * "EmbeddedData"` with `EmbeddedData[].Field`, nested in Branch, Group and randomizer elements through
 * their own `Flow`). A field sent that the survey does not declare is stored on the contact and never
 * reaches the response: the answer loses the context it was sent for. That is what happens when CX renames
 * or removes a field in the Qualtrics UI, and it must stop the send before it happens.
 *
 * Names are compared exactly. Qualtrics documents that embedded data names "were previously
 * case-sensitive" and are no longer for most accounts, "a small portion of accounts" excepted, and advises
 * matching case: the safe reading is that `vip_tier` and `VIP_Tier` may be two fields, so a difference in
 * case alone is a mismatch, reported as such so the fix is obvious.
 */

/** One embedded-data field the survey flow declares. */
export interface SurveyEmbeddedField {
  name: string;
  /**
   * The flow gives it a value itself ("Set a value now": `Value` present and not empty), so it holds
   * something even when nobody sends it.
   */
  setInFlow: boolean;
}

/**
 * The embedded-data fields of a survey definition's flow, in flow order, each name once (a field that
 * some element reads and another sets counts as read: the reading element is what the payload feeds).
 * Undefined when the definition has no `SurveyFlow` object, so a caller never mistakes an unreadable
 * answer for a survey that reads nothing.
 */
export function surveyEmbeddedFields(definition: unknown): SurveyEmbeddedField[] | undefined {
  const flow = isRecord(definition) ? definition['SurveyFlow'] : undefined;
  if (!isRecord(flow)) return undefined;
  const byName = new Map<string, SurveyEmbeddedField>();
  const visit = (element: unknown, depth: number): void => {
    // Real flows nest a few levels; the bound only keeps a malformed answer from recursing forever.
    if (!isRecord(element) || depth > 64) return;
    if (element['Type'] === 'EmbeddedData' && Array.isArray(element['EmbeddedData'])) {
      for (const entry of element['EmbeddedData']) {
        if (!isRecord(entry) || typeof entry['Field'] !== 'string' || entry['Field'] === '') continue;
        const name = entry['Field'];
        const setInFlow = typeof entry['Value'] === 'string' && entry['Value'] !== '';
        const seen = byName.get(name);
        if (!seen) byName.set(name, { name, setInFlow });
        else if (!setInFlow) seen.setInFlow = false;
      }
    }
    if (Array.isArray(element['Flow'])) for (const child of element['Flow']) visit(child, depth + 1);
  };
  visit(flow, 0);
  return [...byName.values()];
}

/**
 * Fields Qualtrics fills from the contact's own fields or by itself, never from embedded data tidemark
 * sends: a survey reading them does not need the payload. ⚠ The reference lists the recipient columns
 * of exports; the `Q_` prefix is Qualtrics' own (Q_URL, Q_TotalDuration, Q_Language, …).
 */
const FILLED_BY_QUALTRICS = new Set([
  'RecipientEmail',
  'RecipientFirstName',
  'RecipientLastName',
  'RecipientPhoneNumber',
  'ExternalDataReference',
  'ExternalReference',
  'FirstName',
  'LastName',
  'Email',
  'PhoneNumber',
  'Language',
]);

export function filledByQualtrics(name: string): boolean {
  return FILLED_BY_QUALTRICS.has(name) || name.startsWith('Q_');
}

/** A payload field the survey does not read under that exact name. */
export interface UnreadField {
  field: string;
  /** `absent`: the survey declares no such field; `case`: only a field whose name differs in case. */
  reason: 'absent' | 'case';
  /** With `case`: the survey's spelling. */
  surveyField?: string;
}

export interface PayloadComparison {
  /** Sent, but the survey does not read it: the answer loses this context. Payload order. Blocks the send. */
  notRead: UnreadField[];
  /**
   * Read by the survey from the contact, but no payload field fills it (and the flow sets no value and
   * Qualtrics does not fill it): a warning, the survey shows it empty. Flow order; fields already named
   * by a `case` mismatch are left out.
   */
  unfilled: string[];
}

export function compareSurveyPayload(payload: readonly string[], surveyFields: readonly SurveyEmbeddedField[]): PayloadComparison {
  const exact = new Set(surveyFields.map((f) => f.name));
  const notRead: UnreadField[] = [];
  const explained = new Set<string>();
  for (const field of payload) {
    if (exact.has(field)) continue;
    const other = surveyFields.find((f) => f.name.toLowerCase() === field.toLowerCase());
    if (other) {
      notRead.push({ field, reason: 'case', surveyField: other.name });
      explained.add(other.name);
    } else {
      notRead.push({ field, reason: 'absent' });
    }
  }
  const sent = new Set(payload);
  const unfilled = surveyFields
    .filter((f) => !sent.has(f.name) && !f.setInFlow && !explained.has(f.name) && !filledByQualtrics(f.name))
    .map((f) => f.name);
  return { notRead, unfilled };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
