/**
 * The flat attribute model of a managed object: what the planner diffs and what a provider's kind maps
 * the service's API to. It sits below both, so neither has to import the other.
 */
export type AttributeValue = string | number | boolean | string[] | null;
export type Attributes = Record<string, AttributeValue>;
