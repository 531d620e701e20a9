import { initial } from './0001-initial.ts';
import { syncPending } from './0002-sync-pending.ts';
import { audiences } from './0003-audiences.ts';
import { surveyInvitations } from './0004-survey-invitations.ts';
import { surveySends } from './0005-survey-sends.ts';
import { audienceMirrorRows } from './0006-audience-mirror-rows.ts';
import { surveyResponses } from './0007-survey-responses.ts';
import { reviewedPlans } from './0008-reviewed-plans.ts';
import { snapshotChanges } from './0009-snapshot-changes.ts';
import { audienceSelected } from './0010-audience-selected.ts';
import { audienceMirrorUnlogged } from './0011-audience-mirror-unlogged.ts';
import { mirrorTouchedFields } from './0012-mirror-touched-fields.ts';
import { mirrorFillfactor } from './0013-mirror-fillfactor.ts';
import { mirrorTouchedEvents } from './0014-mirror-touched-events.ts';
import { audienceCandidatesUnlogged } from './0015-audience-candidates-unlogged.ts';
import type { Migration } from './migration.ts';

/** Every migration this tidemark knows, in version order. Append only. */
export const MIGRATIONS: readonly Migration[] = [initial, syncPending, audiences, surveyInvitations, surveySends, audienceMirrorRows, surveyResponses, reviewedPlans, snapshotChanges, audienceSelected, audienceMirrorUnlogged, mirrorTouchedFields, mirrorFillfactor, mirrorTouchedEvents, audienceCandidatesUnlogged];
