import { z } from 'zod';
import { Duration, IdentifierKind, Name, Percentage, specBase } from './common.ts';

export const SurveyTargetSpec = z
  .strictObject({
    kind: z.literal('SurveyTarget'),
    ...specBase,
    survey: z.string().regex(/^SV_[A-Za-z0-9]+$/, 'a Qualtrics survey id such as SV_3kZ8cTqQ4rPbUuG'),
    purpose: z
      .enum(['product_feedback', 'usage', 'delivery_experience', 'cancellation_reason', 'churn_diagnosis', 'friction', 'nps', 'other'])
      .meta({ description: 'What the survey asks about; product_feedback and usage must wait for delivery.' }),
    product_type: z.string().optional().meta({ description: 'e.g. consumable or apparel: picks the allowed delay window.' }),
    audience: Name.meta({ description: 'The Segment whose members may be surveyed.' }),
    moment: z.strictObject({
      event: Name,
      after: Duration,
      before: Duration,
    }),
    identifier: IdentifierKind.meta({ description: 'Identifier Qualtrics contacts carry, used to tie responses back.' }),
    payload: z.array(Name).default([]).meta({ description: 'Fields sent as embedded data (keep it short).' }),
    mailing_list: z.strictObject({ name: z.string().min(1).max(100) }),
    frequency_cap: z
      .strictObject({
        max: z.number().int().positive(),
        per: Duration,
        scope: z
          .union([z.enum(['all_surveys', 'this_target']), z.array(Name).min(1)])
          .default('all_surveys')
          .meta({ description: 'all_surveys (default), this_target, or a list of survey targets sharing this cap.' }),
      })
      .optional(),
    holdout: Percentage.optional(),
    response_window: Duration.optional().meta({ description: 'How long the link stays open; becomes the distribution expiration.' }),
    distribution: z
      .strictObject({
        from_name: z.string().min(1),
        from_email: z.string().min(3),
        reply_to: z.string().optional(),
        subject: z.string().min(1),
        library_id: z.string().regex(/^(UR|GR)_[A-Za-z0-9]+$/),
        message_id: z.string().regex(/^MS_[A-Za-z0-9]+$/),
      })
      .optional(),
    responses: z
      .strictObject({
        question: z.string().regex(/^QID\d+$/, 'a question id such as QID4'),
        reason_codes: z.record(z.string(), Name),
        write: z
          .strictObject({ attribute: Name.optional(), event: Name.optional() })
          .refine((w) => w.attribute !== undefined || w.event !== undefined, 'write an attribute, an event or both'),
        webhook: z.boolean().optional().meta({ description: 'Receive responses by Qualtrics event subscription.' }),
      })
      .optional(),
    prevent_destroy: z.boolean().optional(),
    moved_from: Name.optional(),
  })
  .meta({ title: 'tidemark SurveyTarget', description: 'Who gets which Qualtrics survey, when, and where answers go.' });

export type SurveyTargetSpec = z.infer<typeof SurveyTargetSpec>;
