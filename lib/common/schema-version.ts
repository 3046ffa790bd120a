/**
 * The schema version of what this release writes: every stored document and every packet it sends
 * (in `ctx.meta.schemaVersion`, never as an action param, which an older node's validator may
 * refuse). What carries none was written or sent by release c4d7bfb, which knows no versions: read
 * it as version 1. Release N+1 runs beside release N (docs/api.md, "Upgrades"), so a change of shape
 * goes in two steps: expand (add what N ignores and keeps), contract in a later release.
 */
import type { Context, Middleware } from "moleculer";

export const SCHEMA_VERSION = 2;

/** The version a document or packet was written at: missing means the release before versions. */
function schemaVersionOf(carrier: { schemaVersion?: unknown } | null | undefined): number {
	const version = carrier?.schemaVersion;
	return typeof version === "number" && Number.isInteger(version) && version > 0 ? version : 1;
}

type SendOptions = { meta?: Record<string, unknown> } & Record<string, unknown>;
type Send = (name: string, payload?: unknown, opts?: unknown) => Promise<unknown>;
type Handler = (ctx: Context<unknown, Record<string, unknown>>) => unknown;

/** Event groups may come as a string or an array (moleculer's own convention): an options object. */
function asOptions(opts: unknown): SendOptions {
	if (opts == null) return {};
	if (typeof opts === "string" || Array.isArray(opts)) return { groups: opts };
	return opts as SendOptions;
}

/** `opts` with this release's version in the packet's meta: this node is its sender. */
function stamp(next: Send): Send {
	return (name, payload, opts) => {
		const options = asOptions(opts);
		return next(name, payload, {
			...options,
			meta: { ...options.meta, schemaVersion: SCHEMA_VERSION }
		});
	};
}

/** The sender's version, read into `ctx.locals.senderSchemaVersion` for the handler. */
function readSenderVersion(ctx: Context<unknown, Record<string, unknown>>): void {
	// A local retry runs the same context again, its meta already read.
	const known = ctx.locals?.senderSchemaVersion as number | undefined;
	const alreadyRead = ctx.meta.schemaVersion === undefined ? known : undefined;
	ctx.locals = { ...ctx.locals, senderSchemaVersion: alreadyRead ?? schemaVersionOf(ctx.meta) };
}

/**
 * Moleculer merges a callee's meta back into its caller's context. An action takes the sender's
 * version off the context before it runs and again before it answers, so that it never travels
 * back to a caller that would send it on as if it were its own.
 */
function readCaller(next: Handler): Handler {
	return async ctx => {
		readSenderVersion(ctx);
		delete ctx.meta.schemaVersion;
		try {
			return await next(ctx);
		} finally {
			delete ctx.meta.schemaVersion;
		}
	};
}

/** An event goes back to nobody, and its context may be shared by several handlers: read only. */
function readEmitter(next: Handler): Handler {
	return ctx => {
		readSenderVersion(ctx);
		return next(ctx);
	};
}

/** Every call and event this node sends says its schema version; every one it takes is read. */
export const schemaVersionMiddleware = {
	name: "SchemaVersion",
	call: stamp,
	emit: stamp,
	broadcast: stamp,
	localAction: readCaller,
	localEvent: readEmitter
} as unknown as Middleware;
