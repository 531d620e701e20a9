/** Plan renderers: each is a pure function of the Plan JSON. */
export { canonicalJson, renderPlanJson } from './json.ts';
export { DEFAULT_MARKDOWN_MAX_LENGTH, planCommentMarker, renderPlanMarkdown, type MarkdownOptions } from './markdown.ts';
export { countChanges, describeDeletes, formatPlanSummary, renderPlanText, type PlanCounts } from './text.ts';
