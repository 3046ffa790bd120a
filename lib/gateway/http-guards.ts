/**
 * The gateway's HTTP guards: what every request and answer goes through before and after an
 * action runs — security headers, the access log, which bodies and queries are accepted. Their
 * refusals are written by lib/gateway/error-answers.ts, as every other error answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Errors } from "moleculer";
import { appConfig } from "../common/config";
import { httpRefusal } from "./http-errors";
import { sendErrorAnswer, setSecurityHeaders } from "./error-answers";
import { loggedPath, pathOf, routeOf, type PublicRoute } from "./route-table";
import { accessLog } from "./access-log";

const { MoleculerClientError } = Errors;

export type RequestWithParams = IncomingMessage & { $params?: Record<string, unknown> };

/** Answers a refusal the door decides itself (lib/gateway/error-answers.ts writes it). */
function refuse(
	req: IncomingMessage,
	res: ServerResponse,
	status: number,
	type: string,
	message: string
): true {
	sendErrorAnswer(req, res, httpRefusal(status, type, message));
	return true;
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

/** Headers that make an answer conditional; only a GET whose answer carries an ETag heeds them. */
const CONDITIONAL_HEADERS = [
	"if-none-match",
	"if-modified-since",
	"if-match",
	"if-unmodified-since",
	"if-range"
];

/**
 * moleculer-web answers 304 to any fresh-looking 2xx (`If-None-Match: *` on a POST that booked):
 * a request whose answer carries no ETag loses its conditional headers before anything reads them.
 */
function dropStrayConditionals(req: IncomingMessage, route: PublicRoute): void {
	if (req.method === "GET" && route.conditional) return;
	for (const name of CONDITIONAL_HEADERS) delete req.headers[name];
}

/**
 * The gateway's front door, before any routing: security headers and the access log on every
 * answer; a path not spelled exactly as a route is 404 whatever the method; OPTIONS and HEAD never
 * reach an action (moleculer-web would run OPTIONS as the method in Access-Control-Request-Method);
 * other unlisted methods on a route are 405; a body larger than the limit is refused before it is
 * read, and one that does not arrive in time is 408. Returns true when it has answered.
 */
export function guardAndLog(
	req: IncomingMessage,
	res: ServerResponse,
	routes: readonly PublicRoute[]
): boolean {
	const path = pathOf(req.url);
	setSecurityHeaders(res);
	if (appConfig.accessLog) {
		const started = process.hrtime.bigint();
		res.once("finish", () => {
			const ms = Number(process.hrtime.bigint() - started) / 1e6;
			accessLog.line(
				`${req.method} ${loggedPath(routes, path)} ${res.statusCode} ${ms.toFixed(1)}ms`
			);
		});
	}

	// Node's own refusal of an HTTP/1.1 request without Host is empty; this one is JSON.
	if (req.httpVersion === "1.1" && !req.headers.host) {
		closeAfterAnswer(req, res);
		return refuse(req, res, 400, "BAD_REQUEST", "the request has no Host header");
	}
	const route = routeOf(routes, path);
	if (!route) {
		// A body sent to no route is not worth reading (a 10 GB one would be, to the end).
		if (Number(req.headers["content-length"]) > 0 || req.headers["transfer-encoding"])
			closeAfterAnswer(req, res);
		return refuse(req, res, 404, "NOT_FOUND", "not found");
	}
	const method = req.method ?? "";
	if (method === "OPTIONS" && answerPreflight(req, res, route.methods)) return true;
	if (!(route.methods as string[]).includes(method)) {
		res.setHeader("Allow", route.methods.join(", "));
		return refuse(
			req,
			res,
			405,
			"METHOD_NOT_ALLOWED",
			`${route.route} answers ${route.methods.join(", ")}`
		);
	}
	dropStrayConditionals(req, route);

	const length = Number(req.headers["content-length"] ?? 0);
	if (length > appConfig.bodyLimitBytes) {
		closeAfterAnswer(req, res);
		return refuse(req, res, 413, "PAYLOAD_TOO_LARGE", "request body is too large");
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
		if (tooLarge) refuse(req, res, 413, "PAYLOAD_TOO_LARGE", "request body is too large");
		else refuse(req, res, 408, "REQUEST_TIMEOUT", "the request body did not arrive in time");
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
