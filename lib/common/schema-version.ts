/**
 * The schema version of what this release writes: every stored document and every packet it sends
 * (in `ctx.meta.schemaVersion`, never as an action param, which an older node's validator may
 * refuse). What carries none was written or sent by release c4d7bfb, which knows no versions: read
 * it as version 1. Release N+1 runs beside release N (docs/api.md, "Upgrades"), so a change of shape
 * goes in two steps: expand (add what N ignores and keeps), contract in a later release.
 */
export const SCHEMA_VERSION = 2;

/** The version a document or packet was written at: missing means the release before versions. */
export function schemaVersionOf(carrier: { schemaVersion?: unknown } | null | undefined): number {
	const version = carrier?.schemaVersion;
	return typeof version === "number" && Number.isInteger(version) && version > 0 ? version : 1;
}
