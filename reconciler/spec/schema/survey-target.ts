import { z } from 'zod';
import { Duration, IdentifierKind, Name, Percentage, TimeZone, specBase } from './common.ts';

/** "HH:MM-HH:MM" in the 24-hour clock, the end up to 24:00. Groups: open h, m; close h, m (or 24, 00). */
export const HOURS_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$/;

const SendWindow = z
  .strictObject({
    hours: z
      .string()
      .regex(HOURS_PATTERN, 'write the sending hours as HH:MM-HH:MM in the 24-hour clock, e.g. "09:00-20:00" (quote it in YAML)')
      .meta({ description: 'Local hours invitations may go out, start included, end excluded, e.g. "09:00-20:00"; "00:00-24:00" is the whole day. Not across midnight.' }),
    days: z
      .array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']))
      .optional()
      .meta({ description: 'Local days the hours apply to, e.g. [mon, tue, wed, thu, fri]. Default every day.' }),
    timezone: TimeZone.optional().meta({ description: 'IANA zone the hours and days are read in, e.g. America/New_York. Default: the Workspace’s timezone. Not with field.' }),
    field: Name.optional().meta({ description: 'A string field (in Fields) holding each person’s IANA zone, e.g. timezone: the hours are then each person’s local hours. Not with timezone.' }),
    fallback_timezone: TimeZone.optional().meta({ description: 'With field: the zone for people whose field is blank or not a known zone, e.g. America/Chicago. Default: the Workspace’s timezone.' }),
  })
  .superRefine((w, ctx) => {
    if (w.timezone !== undefined && w.field !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['field'], message: 'give either timezone (one zone for everyone) or field (each person’s zone), not both; with field, the zone for people without one is fallback_timezone' });
    }
    if (w.fallback_timezone !== undefined && w.field === undefined) {
      ctx.addIssue({ code: 'custom', path: ['fallback_timezone'], message: 'fallback_timezone is only for a window read in each person’s zone (field); use timezone for one zone for everyone' });
    }
  });

export const SurveyTargetSpec = z
  .strictObject({
    kind: z.literal('SurveyTarget').meta({ description: 'Always SurveyTarget: this document says who gets a Qualtrics survey, and when.' }),
    ...specBase,
    survey: z
      .string()
      .regex(/^SV_[A-Za-z0-9]+$/, 'a Qualtrics survey id such as SV_3kZ8cTqQ4rPbUuG')
      .meta({ description: 'The Qualtrics survey id (in the survey’s URL), e.g. SV_3kZ8cTqQ4rPbUuG.' }),
    purpose: z
      .enum(['product_feedback', 'usage', 'delivery_experience', 'cancellation_reason', 'churn_diagnosis', 'friction', 'nps', 'other'])
      .meta({ description: 'What the survey asks about; product_feedback and usage must wait for delivery.' }),
    product_type: z.string().optional().meta({ description: 'e.g. consumable or apparel: picks the allowed delay window.' }),
    audience: Name.meta({ description: 'The Segment whose members may be surveyed.' }),
    moment: z
      .strictObject({
        event: Name.meta({ description: 'The event that starts the clock, declared in Fields, e.g. order_delivered.' }),
        after: Duration.meta({ description: 'Earliest send, counted from the event, e.g. 7d.' }),
        before: Duration.meta({ description: 'Latest send, counted from the event; must be later than after, e.g. 14d.' }),
      })
      .meta({ description: 'When to send: between after and before the event, e.g. { event: order_delivered, after: 7d, before: 14d }.' }),
    identifier: IdentifierKind.meta({ description: 'Identifier Qualtrics contacts carry, used to tie responses back.' }),
    payload: z
      .array(Name)
      .default([])
      .meta({ description: 'Fields sent to Qualtrics as embedded data, e.g. [order_count, vip_tier]. Default none; keep it short (the Workspace sets the maximum, 8 by default).' }),
    mailing_list: z
      .strictObject({
        name: z.string().min(1).max(100).meta({ description: 'Name of the list in Qualtrics (at most 100 characters), e.g. "tidemark: post-purchase fit".' }),
      })
      .meta({ description: 'The XM Directory mailing list tidemark keeps for this target; the survey is sent to its contacts.' }),
    frequency_cap: z
      .strictObject({
        max: z.number().int().positive().meta({ description: 'Most surveys one person may get in the period, e.g. 1.' }),
        per: Duration.meta({ description: 'The period of the cap, e.g. 30d.' }),
        scope: z
          .union([z.enum(['all_surveys', 'this_target']), z.array(Name).min(1)])
          .default('all_surveys')
          .meta({ description: 'all_surveys (default), this_target, or a list of survey targets sharing this cap.' }),
      })
      .optional()
      .meta({ description: 'How often one person may be surveyed, e.g. { max: 1, per: 30d }. Default: the Workspace’s surveys.frequency_cap.' }),
    priority: z
      .number()
      .int()
      .optional()
      .meta({ description: 'Which target gets a person several targets want in the same run: the lower number wins, e.g. 1. Targets without one come after those with one, in name order. The person gets one survey.' }),
    holdout: Percentage.optional().meta({ description: 'Share of the audience deliberately not surveyed, so the effect of acting on answers can be measured, e.g. 10%.' }),
    send_window: SendWindow.optional().meta({
      description:
        'When invitations may go out, e.g. { hours: "09:00-20:00", days: [mon, tue, wed, thu, fri], timezone: America/New_York }. An invitation that falls outside waits for the next opening; it is never dropped. Default: any time.',
    }),
    response_window: Duration.optional().meta({ description: 'How long the survey link stays open, e.g. 72h; becomes the distribution’s expiration. 48–96h keeps post-purchase answers fresh.' }),
    distribution: z
      .strictObject({
        from_name: z.string().min(1).meta({ description: 'Sender name the person sees, e.g. Hearth & Harvest.' }),
        from_email: z.string().min(3).meta({ description: 'Sender email address, e.g. hello@example.com.' }),
        reply_to: z.string().optional().meta({ description: 'Address replies go to; without it, replies go to from_email.' }),
        subject: z.string().min(1).meta({ description: 'Email subject line, e.g. How is your coffee working out?' }),
        library_id: z
          .string()
          .regex(/^(UR|GR)_[A-Za-z0-9]+$/)
          .meta({ description: 'Qualtrics library holding the message: UR_… (your own) or GR_… (a group library).' }),
        message_id: z
          .string()
          .regex(/^MS_[A-Za-z0-9]+$/)
          .meta({ description: 'The invitation message in that library, e.g. MS_4bT8pL2nR6wQ0eY.' }),
      })
      .optional()
      .meta({ description: 'The invitation email Qualtrics sends: sender, subject and the library message used as its body.' }),
    responses: z
      .strictObject({
        question: z
          .string()
          .regex(/^QID\d+$/, 'a question id such as QID4')
          .meta({ description: 'The Qualtrics question whose answer is the reason code, e.g. QID4.' }),
        reason_codes: z
          .record(z.string(), Name)
          .meta({ description: 'Answer choice id → reason written to Customer.io, e.g. { "1": shipping_issue, "2": product_quality }.' }),
        write: z
          .strictObject({
            attribute: Name.optional().meta({ description: 'Person attribute set to the reason, e.g. cancel_reason.' }),
            event: Name.optional().meta({ description: 'Event sent with the reason, e.g. survey_answered.' }),
          })
          .refine((w) => w.attribute !== undefined || w.event !== undefined, 'write an attribute, an event or both')
          .meta({ description: 'Where the reason goes in Customer.io: an attribute, an event, or both.' }),
        webhook: z.boolean().optional().meta({ description: 'Receive responses by Qualtrics event subscription.' }),
      })
      .optional()
      .meta({ description: 'How answers come back into Customer.io, as reason codes.' }),
    outcome: z
      .strictObject({
        event: Name.meta({ description: 'The event that counts as the outcome, declared in Fields and sent by a Source, e.g. order_placed.' }),
        within: Duration.meta({ description: 'How long after the invitation (or holdout decision) the event counts, e.g. 30d. A person whose window has not closed yet is not counted.' }),
        label: z.string().min(1).optional().meta({ description: 'How reports name the outcome, e.g. "second order within 30 days". Default: the event and the window.' }),
      })
      .optional()
      .meta({
        description:
          'What the survey (and acting on its answers) should change, measured against the holdout by `tidemark surveys report`: people who had the event within the window after their invitation, e.g. { event: order_placed, within: 30d, label: "second order within 30 days" }.',
      }),
    prevent_destroy: z
      .boolean()
      .optional()
      .meta({ description: 'true: the Qualtrics mailing list and webhook of this target are never deleted, even once the spec is removed, until released with `tidemark state unprotect`. Default false.' }),
    moved_from: Name.optional().meta({ description: 'Previous name of this survey target: a rename, not a delete and create.' }),
  })
  .meta({ title: 'tidemark SurveyTarget', description: 'Who gets which Qualtrics survey, when, and where answers go.' });

export type SurveyTargetSpec = z.infer<typeof SurveyTargetSpec>;
