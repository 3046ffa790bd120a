/**
 * The gateway's HTTP guards: what every request and answer goes through before and after an
 * action runs — security headers, the access log, which bodies and queries are accepted, and the
 * one place where an error becomes an HTTP answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Errors } from "moleculer";
import { appConfig } from "../moleculer.config";
import { describeError } from "./http-errors";

const { MoleculerClientError } = Errors;

export type RequestWithParams = IncomingMessage & { $params?: Record<string, unknown> };

/** The client's address for rate limiting: the proxy's X-Forwarded-For only when trusted. */
export function clientAddress(req: IncomingMessage): string {
	if (appConfig.trustProxy) {
		const forwarded = req.headers["x-forwarded-for"];
		const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim();
		if (first) return first;
	}
	return req.socket.remoteAddress ?? "unknown";
}

export function setSecurityHeaders(res: ServerResponse): void {
	res.setHeader("X-Content-Type-Options", "nosniff");
	res.setHeader("X-Frame-Options", "DENY");
	res.setHeader("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	res.setHeader("Referrer-Policy", "no-referrer");
	res.setHeader("Cache-Control", "no-store");
}

/** Security headers on every answer; one access-log line per request, with no personal data. */
export function guardAndLog(
	this: { logger: { info(...args: unknown[]): void } },
	req: IncomingMessage,
	res: ServerResponse,
	next: () => void
): void {
	const started = process.hrtime.bigint();
	setSecurityHeaders(res);
	res.once("finish", () => {
		const ms = Number(process.hrtime.bigint() - started) / 1e6;
		const path = (req.url ?? "").split("?")[0];
		this.logger.info(`${req.method} ${path} ${res.statusCode} ${ms.toFixed(1)}ms`);
	});
	next();
}

/** A form sends everything as text: turn a whole-number `count` into a number. */
export function acceptCheckoutBody(req: RequestWithParams): void {
	const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
	if (type !== "application/json" && type !== "application/x-www-form-urlencoded")
		throw new MoleculerClientError(
			"send the checkout as application/json or application/x-www-form-urlencoded",
			415,
			"UNSUPPORTED_MEDIA_TYPE",
			{ contentType: type || null }
		);
	const params = req.$params ?? {};
	if (type === "application/x-www-form-urlencoded" && typeof params.count === "string") {
		if (/^\d{1,9}$/.test(params.count)) params.count = Number(params.count);
	}
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
	// moleculer-web has already logged a 5xx cause with its stack.
	const { status, body, retryAfter } = describeError(err);
	// Some errors (a badly encoded path) are raised before the `use` middleware ran.
	setSecurityHeaders(res);
	// The rate limiter says when its window resets; wait until then rather than a whole window.
	const resetAt = Number(res.getHeader("X-Rate-Limit-Reset"));
	if (status === 429 && resetAt > Date.now())
		res.setHeader("Retry-After", String(Math.ceil((resetAt - Date.now()) / 1000)));
	else if (retryAfter !== undefined) res.setHeader("Retry-After", String(retryAfter));
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	res.writeHead(status);
	res.end(JSON.stringify(body));
}
