export {
  createQualtricsEmulator,
  DEFAULT_ENDPOINT_LIMITS,
  type MailingListContact,
  type QualtricsConfigPatch,
  type QualtricsEmulator,
  type QualtricsEmulatorOptions,
} from './emulator.ts';
export { ADMIN_PREFIX } from './admin.ts';
export { SeedError, type EmbeddedDataEditInput, type SeedDirectoryInput, type SeedResponseInput, type SeedSurveyInput } from './seed.ts';
export type {
  Contact,
  Distribution,
  MailingList,
  QualtricsConfig,
  Subscription,
  SurveyResponse,
  Transaction,
  WebhookDelivery,
} from './state.ts';
