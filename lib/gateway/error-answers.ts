/**
 * The one writer of error answers, wherever an error is decided: moleculer-web's `onError`, the
 * front door's own refusals, the sold-out door, and Node's parser refusals on a bare socket. Each
 * goes through `describeError` (lib/gateway/http-errors.ts) and comes out as the same JSON, status
 * and headers.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { describeError, type HttpError } from "./http-errors";

const SECURITY_HEADERS: [string, string][] = [
	["X-Content-Type-Options", "nosniff"],
	["X-Frame-Options", "DENY"],
	["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"],
	["Referrer-Policy", "no-referrer"],
	["Cache-Control", "no-store"]
];

/** The headers every answer starts with (a page asset or a cached read may loosen some). */
export function setSecurityHeaders(res: ServerResponse): void {
	for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value);
}

/** Writes an error as moleculer-web's `onError` hands it over (its signature). */
export function sendErrorAnswer(_req: IncomingMessage, res: ServerResponse, err: unknown): void {
	writeErrorAnswer(res, describeError(err));
}

/** Writes an error already described, unless an answer has begun (the door's 408 may have). */
export function writeErrorAnswer(res: ServerResponse, { status, body, retryAfter }: HttpError) {
	if (res.headersSent) return;
	// Some errors (a badly encoded path) are raised before the front door set these.
	setSecurityHeaders(res);
	// The rate limiter says when its window resets; wait until then rather than a whole window.
	const resetAt = Number(res.getHeader("X-Rate-Limit-Reset"));
	if (status === 429 && resetAt > Date.now())
		res.setHeader("Retry-After", String(Math.ceil((resetAt - Date.now()) / 1000)));
	else if (retryAfter !== undefined) res.setHeader("Retry-After", String(retryAfter));
	const json = JSON.stringify(body);
	res.setHeader("Content-Type", "application/json; charset=utf-8");
	// With its length known the answer goes out in one write, not chunked.
	res.setHeader("Content-Length", Buffer.byteLength(json));
	res.writeHead(status);
	res.end(json);
}

/** A whole HTTP answer for a socket that has no response object (Node's parser refused it). */
export function socketErrorAnswer(err: unknown): string {
	const { status, body, retryAfter } = describeError(err);
	const json = JSON.stringify(body);
	const headers = [
		...SECURITY_HEADERS,
		["Content-Type", "application/json; charset=utf-8"],
		["Content-Length", String(Buffer.byteLength(json))],
		...(retryAfter === undefined ? [] : [["Retry-After", String(retryAfter)]]),
		["Connection", "close"]
	];
	const head = headers.map(([name, value]) => `${name}: ${value}\r\n`).join("");
	return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${json}`;
}
