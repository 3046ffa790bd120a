/**
 * The gateway's HTTP guards: what every request and answer goes through before and after an
 * action runs — security headers, the access log, which bodies and queries are accepted, and the
 * one place where an error becomes an HTTP answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Errors } from "moleculer";
import { appConfig } from "../common/config";
import { describeError } from "./http-errors";
import { accessLog } from "./access-log";

const { MoleculerClientError } = Errors;

export type RequestWithParams = IncomingMessage & { $params?: Record<string, unknown> };

export function setSecurityHeaders(res: ServerResponse): void {
	res.setHeader("X-Content-Type-Options", "nosniff");
	res.setHeader("X-Frame-Options", "DENY");
	res.setHeader("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	res.setHeader("Referrer-Policy", "no-referrer");
	res.setHeader("Cache-Control", "no-store");
}

/** The routes of docs/api.md and the methods each answers; the access log names these. */
export const PUBLIC_ROUTES: { route: string; pattern: RegExp; methods: string[] }[] = [
	{ route: "/", pattern: /^\/$/, methods: ["GET"] },
	{ route: "/shows/:id", pattern: /^\/shows\/[^/]+$/, methods: ["GET"] },
	{ route: "/reserve", pattern: /^\/reserve$/, methods: ["POST"] },
	{ route: "/reservations/:id", pattern: /^\/reservations\/[^/]+$/, methods: ["GET", "DELETE"] },
	{ route: "/health", pattern: /^\/health$/, methods: ["GET"] },
	{ route: "/openapi.json", pattern: /^\/openapi\.json$/, methods: ["GET"] },
	{ route: "/events", pattern: /^\/events$/, methods: ["GET"] },
	{ route: "/box-office/", pattern: /^\/box-office(\/[^/]*)?$/, methods: ["GET"] }
];

/** Longest path the access log writes as it came; ids beyond are the client's own business. */
const LOGGED_PATH_CHARS = 64;

function matchRoute(path: string) {
	const trimmed = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
	return PUBLIC_ROUTES.find(r => r.pattern.test(trimmed)) ?? null;
}

/** The access log's name for a path: its route, never the capability id inside it. */
function loggedPath(path: string): string {
	const match = matchRoute(path);
	if (match) return match.route;
	const cut = path.length > LOGGED_PATH_CHARS ? `${path.slice(0, LOGGED_PATH_CHARS)}…` : path;
	return JSON.stringify(cut).slice(1, -1);
}

/** An error answered by the door itself, before moleculer-web or a body parser saw the request. */
function refuseAtTheDoor(res: ServerResponse, status: number, message: string, type: string) {
	const names: Record<number, string> = {
		404: "NotFoundError",
		405: "MethodNotAllowed",
		408: "RequestTimeout",
		413: "PayloadTooLarge"
	};
	writeJson(
		res,
		status,
		JSON.stringify({ name: names[status] ?? "Error", message, code: status, type })
	);
}

/** How long a client that is still sending gets to read our answer before the connection goes. */
const CLOSE_GRACE_MS = 1000;

/**
 * Ends a connection whose request body will not be read, once the answer is out: stop reading,
 * end our side, and drop it a moment later (dropping it at once could reset the connection
 * before the client has read the answer).
 */
function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
	res.setHeader("Connection", "close");
	res.once("finish", () => {
		req.socket.pause();
		req.socket.end();
		setTimeout(() => req.socket.destroy(), CLOSE_GRACE_MS).unref();
	});
}

/** A CORS preflight from an allowed origin for a listed method: 204 with the CORS headers. */
function answerPreflight(req: IncomingMessage, res: ServerResponse, methods: string[]): boolean {
	const origin = req.headers.origin;
	const asked = String(req.headers["access-control-request-method"] ?? "").toUpperCase();
	if (!origin || !appConfig.corsOrigins.includes(origin) || !methods.includes(asked))
		return false;
	res.setHeader("Access-Control-Allow-Origin", origin);
	res.setHeader("Vary", "Origin");
	res.setHeader("Access-Control-Allow-Methods", methods.join(", "));
	res.setHeader("Access-Control-Allow-Headers", "Content-Type, Idempotency-Key");
	res.setHeader("Access-Control-Max-Age", "600");
	res.writeHead(204, { "Content-Length": "0" });
	res.end();
	return true;
}

/**
 * The gateway's front door, before any routing: security headers and the access log on every
 * answer; OPTIONS and HEAD never reach an action (moleculer-web would run OPTIONS as the method in
 * Access-Control-Request-Method); other unlisted methods on a known route are 405; a body larger
 * than the limit is refused before it is read, and one that does not arrive in time is 408.
 * Returns true when it has answered.
 */
export function guardAndLog(
	_log: { info(...args: unknown[]): void },
	req: IncomingMessage,
	res: ServerResponse
): boolean {
	const path = (req.url ?? "").split("?")[0];
	setSecurityHeaders(res);
	if (appConfig.accessLog) {
		const started = process.hrtime.bigint();
		res.once("finish", () => {
			const ms = Number(process.hrtime.bigint() - started) / 1e6;
			accessLog.line(
				`${req.method} ${loggedPath(path)} ${res.statusCode} ${ms.toFixed(1)}ms`
			);
		});
	}

	const route = matchRoute(path);
	const method = req.method ?? "";
	if (route && method === "OPTIONS" && answerPreflight(req, res, route.methods)) return true;
	if (!route && (method === "OPTIONS" || method === "HEAD")) {
		refuseAtTheDoor(res, 404, "not found", "NOT_FOUND");
		return true;
	}
	if (route && !route.methods.includes(method)) {
		res.setHeader("Allow", route.methods.join(", "));
		refuseAtTheDoor(
			res,
			405,
			`${route.route} answers ${route.methods.join(", ")}`,
			"METHOD_NOT_ALLOWED"
		);
		return true;
	}

	const length = Number(req.headers["content-length"] ?? 0);
	if (length > appConfig.bodyLimitBytes) {
		closeAfterAnswer(req, res);
		refuseAtTheDoor(res, 413, "request body is too large", "PAYLOAD_TOO_LARGE");
		return true;
	}
	if (length > 0 || req.headers["transfer-encoding"] !== undefined) awaitBody(req, res);
	return false;
}

/** How often a body in transit is looked at, and the bytes of chunk framing allowed past the limit. */
const BODY_WATCH_MS = 100;
const FRAMING_SLACK_BYTES = 4096;

/** Bodies in transit, with when each began; one timer looks at them all (see `awaitBody`). */
const bodiesInTransit = new Map<
	IncomingMessage,
	{ res: ServerResponse; started: number; bytesBefore: number }
>();
let bodyWatch: NodeJS.Timeout | null = null;

/**
 * Watches a body in transit without reading it (the socket's byte count): more bytes than the
 * limit (a chunked body has no Content-Length) is 413, and a body not complete after
 * `bodyTimeoutMs` is 408; either way the connection is closed. One timer serves every request,
 * so that a request whose body is already there costs no timer of its own.
 */
function awaitBody(req: IncomingMessage, res: ServerResponse): void {
	bodiesInTransit.set(req, { res, started: Date.now(), bytesBefore: req.socket.bytesRead });
	bodyWatch ??= setInterval(watchBodies, BODY_WATCH_MS).unref();
}

function watchBodies(): void {
	const now = Date.now();
	for (const [req, { res, started, bytesBefore }] of bodiesInTransit) {
		if (req.complete || res.headersSent || res.destroyed) {
			bodiesInTransit.delete(req);
			continue;
		}
		const tooLarge =
			req.socket.bytesRead - bytesBefore > appConfig.bodyLimitBytes + FRAMING_SLACK_BYTES;
		if (!tooLarge && now - started < appConfig.bodyTimeoutMs) continue;
		bodiesInTransit.delete(req);
		closeAfterAnswer(req, res);
		if (tooLarge) refuseAtTheDoor(res, 413, "request body is too large", "PAYLOAD_TOO_LARGE");
		else
			refuseAtTheDoor(res, 408, "the request body did not arrive in time", "REQUEST_TIMEOUT");
	}
	if (bodiesInTransit.size === 0 && bodyWatch) {
		clearInterval(bodyWatch);
		bodyWatch = null;
	}
}

/** A number as a form sends it: decimal digits, maybe signed, maybe with a fraction. */
const FORM_NUMBER = /^-?\d{1,9}(\.\d{1,9})?$/;

/**
 * The checkout's body, whichever way it came: a form's numeric `count` becomes a number so that
 * the validator judges it as it judges JSON, and a show id is read in lower case.
 */
export function acceptCheckoutBody(req: RequestWithParams & { query?: object }): void {
	const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
	if (type !== "application/json" && type !== "application/x-www-form-urlencoded")
		throw new MoleculerClientError(
			"send the checkout as application/json or application/x-www-form-urlencoded",
			415,
			"UNSUPPORTED_MEDIA_TYPE",
			{ contentType: type || null }
		);
	// moleculer-web merges the query over the body: a field must come from the body alone.
	if (Object.keys(req.query ?? {}).length > 0)
		throw new MoleculerClientError(
			"send the checkout's fields in the body, not in the query string",
			422,
			"UNEXPECTED_QUERY"
		);
	normaliseCheckoutParams(type, req.$params ?? {});
}

/**
 * A form's numeric `count` becomes a number, so that the validator judges it as it judges JSON,
 * and a show id is read in lower case.
 */
export function normaliseCheckoutParams(type: string, params: Record<string, unknown>): void {
	if (type === "application/x-www-form-urlencoded" && typeof params.count === "string") {
		if (FORM_NUMBER.test(params.count)) params.count = Number(params.count);
	}
	if (typeof params.showID === "string") params.showID = params.showID.toLowerCase();
}

const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** The checkout's Idempotency-Key header, if any, once it is known to be well formed. */
export function acceptIdempotencyKey(req: IncomingMessage): string | undefined {
	const key = req.headers["idempotency-key"];
	if (key === undefined) return undefined;
	if (typeof key !== "string" || !IDEMPOTENCY_KEY_PATTERN.test(key))
		throw new MoleculerClientError(
			"Idempotency-Key must be 1 to 255 visible ASCII characters",
			422,
			"INVALID_IDEMPOTENCY_KEY"
		);
	return key;
}

/** `limit` and `offset` in a query: plain digits only, never "", "0x10", "1e2", "+1" or " 5". */
export function acceptPageQuery(params: Record<string, unknown>): void {
	for (const field of ["limit", "offset"]) {
		const value = params[field];
		if (value !== undefined && !(typeof value === "string" && /^\d+$/.test(value)))
			throw new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
				{
					type: "number",
					field,
					message: `The '${field}' field must be a whole number in digits.`
				}
			]);
	}
}

/** The one place where errors become HTTP answers. */
export function sendErrorAnswer(_req: IncomingMessage, res: ServerResponse, err: Error): void {
	// The door may have answered already (408) while a body parser was still reading.
	if (res.headersSent) return;
	// moleculer-web has already logged a 5xx cause with its stack.
	const { status, body, retryAfter } = describeError(err);
	// Some errors (a badly encoded path) are raised before the `use` middleware ran.
	setSecurityHeaders(res);
	// The rate limiter says when its window resets; wait until then rather than a whole window.
	const resetAt = Number(res.getHeader("X-Rate-Limit-Reset"));
	if (status === 429 && resetAt > Date.now())
		res.setHeader("Retry-After", String(Math.ceil((resetAt - Date.now()) / 1000)));
	else if (retryAfter !== undefined) res.setHeader("Retry-After", String(retryAfter));
	writeJson(res, status, JSON.stringify(body));
}

/** Writes a JSON answer, unless one has been written already (the door's 408). */
export function writeJson(res: ServerResponse, status: number, json: string): void {
	if (res.headersSent) return;
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	// With its length known the answer goes out in one write, not chunked.
	res.setHeader("Content-Length", Buffer.byteLength(json));
	res.writeHead(status);
	res.end(json);
}
