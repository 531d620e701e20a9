/**
 * Hearth & Harvest's Qualtrics surveys: the three the example SurveyTargets name, with the questions their
 * `responses.question` reads, choices whose recodes are the targets' reason codes, and a flow that reads
 * exactly the embedded data each target's `payload` sends (so `tidemark plan` finds no drift; the
 * identifier travels as the contact's extRef, not as embedded data). Surveys are built in
 * the Qualtrics UI (the API cannot create them), so the embedded sandbox is seeded with these. Plain data,
 * in the sandbox's seeding format (reconciler/sandbox/qualtrics/seed.ts validates it).
 */
export interface WorldSurvey {
  id: string;
  name: string;
  questions: Array<{ id: string; text: string; type: 'single' | 'multi' | 'text' | 'nps'; choices?: Record<string, { text: string; recode: string }> }>;
  embeddedData: string[];
}

const choices = (entries: Array<[string, string]>): Record<string, { text: string; recode: string }> =>
  Object.fromEntries(entries.map(([recode, text]) => [recode, { text, recode }]));

export const WORLD_SURVEYS: readonly WorldSurvey[] = [
  {
    id: 'SV_3kZ8cTqQ4rPbUuG',
    name: 'Post-purchase fit',
    questions: [
      { id: 'QID1', text: 'How likely are you to recommend Hearth & Harvest to a friend?', type: 'nps' },
      { id: 'QID2', text: 'How would you rate the taste of your last order?', type: 'single', choices: choices([['1', 'Poor'], ['2', 'Fair'], ['3', 'Good'], ['4', 'Excellent']]) },
      { id: 'QID3', text: 'Anything else you want to tell us?', type: 'text' },
      { id: 'QID4', text: 'Which best describes your last order?', type: 'single', choices: choices([['1', 'It arrived late or damaged'], ['2', 'The product was not what I hoped'], ['3', 'I loved it and will reorder']]) },
    ],
    embeddedData: ['last_purchase_at', 'order_count', 'product_category_last_purchased', 'vip_tier'],
  },
  {
    id: 'SV_8mWq2ZcR5tYhJ1n',
    name: 'Cancel intent',
    questions: [
      { id: 'QID1', text: 'We are sorry to see you go. How long were you with us?', type: 'single', choices: choices([['1', 'Under 3 months'], ['2', '3 to 12 months'], ['3', 'Over a year']]) },
      { id: 'QID2', text: 'What is the main reason you want to cancel?', type: 'single', choices: choices([['1', 'Price'], ['2', 'Too much coffee'], ['3', 'Taste'], ['4', 'Allergy or dietary reasons'], ['5', 'Moving']]) },
      { id: 'QID3', text: 'What would have kept you?', type: 'text' },
    ],
    embeddedData: ['subscription_status', 'loyalty_tier', 'order_count'],
  },
  {
    id: 'SV_1pXv7KdN3sGa9Lq',
    name: 'Lapsed diagnosis',
    questions: [
      { id: 'QID1', text: 'What is the main reason you have not ordered lately?', type: 'single', choices: choices([['1', 'Price'], ['2', 'Found an alternative'], ['3', 'Quality'], ['4', 'I forgot'], ['5', 'Allergy or dietary reasons']]) },
      { id: 'QID2', text: 'What would bring you back?', type: 'multi', choices: choices([['1', 'A discount'], ['2', 'A smaller box'], ['3', 'New flavours'], ['4', 'Nothing']]) },
    ],
    embeddedData: ['last_purchase_at', 'order_count', 'vip_tier'],
  },
];
