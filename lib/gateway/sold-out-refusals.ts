/**
 * Checkouts for a show that the gateway knows to be sold out, refused at the front door. After an
 * on-sale most checkouts are for sold-out shows, and through moleculer-web each costs several
 * times a refusal here: the body parser, the route and its middlewares, a broker call and an error
 * with its stack. The store still decides every booking: only a show that this node's fresh list
 * shows with no seat left is refused here (`isKnownSoldOut`).
 *
 * Only a plain checkout takes this path: `POST /reserve` without a query string or an
 * Idempotency-Key (a replay must get its first answer), with an unencoded UTF-8 JSON or form body
 * whose Content-Length is within the limit. Its body is read here. Anything but a valid checkout of
 * a sold-out show goes on to moleculer-web with the body read (body-parser passes a finished
 * request by), and is answered there exactly as before, rate limit included.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { appConfig } from "../common/config";
import { normaliseCheckoutParams } from "./http-guards";
import { sendErrorAnswer, writeErrorAnswer } from "./error-answers";
import { bodyReadFailed, parseCheckoutParams, requireUtf8 } from "./request-body";
import { notEnoughSeats } from "../common/errors";
import { describeError, type HttpError } from "./http-errors";
import { isKnownSoldOut, type ShowListCache } from "./show-list-cache";
import {
	countRateLimitHit,
	RateLimitExceeded,
	type RouteRateLimit
} from "./moleculer-web-internals";

export interface SoldOutDoor {
	cache: ShowListCache;
	ttlMs: number;
	maxTicketsPerOrder: number;
	/** The checkout action's own parameter check. */
	validate(params: Record<string, unknown>): true | unknown[];
	rateLimit: RouteRateLimit | null;
	/** Counts a refusal in `tickets_checkouts_total`. */
	counted(outcome: "sold_out" | "invalid" | "rate_limited"): void;
	/** Answers a throw here, once the body was read: it must not end the process. */
	failed(req: IncomingMessage, res: ServerResponse, err: unknown): void;
}

const CHECKOUT_TYPES = new Set(["application/json", "application/x-www-form-urlencoded"]);

/** The media type of a checkout body that may take this path, or null. */
function plainCheckoutType(req: IncomingMessage): string | null {
	const h = req.headers;
	if (req.method !== "POST" || req.url !== "/reserve") return null;
	if (h["idempotency-key"] !== undefined || h["transfer-encoding"] !== undefined) return null;
	if (h["content-encoding"] !== undefined && h["content-encoding"] !== "identity") return null;
	const length = Number(h["content-length"]);
	if (!(length > 0 && length <= appConfig.bodyLimitBytes)) return null;
	const [type, ...parameters] = (h["content-type"] ?? "").toLowerCase().split(";");
	const charset = parameters.map(p => p.trim()).find(p => p.startsWith("charset="));
	if (charset !== undefined && charset !== "charset=utf-8") return null;
	const media = type.trim();
	return CHECKOUT_TYPES.has(media) ? media : null;
}

/**
 * Calls `done` with the whole body. A request cut off before its end never calls it, and its
 * listeners go with it.
 */
function readBody(
	req: IncomingMessage,
	done: (body: Buffer) => void,
	failed: (err: unknown) => void
): void {
	const chunks: Buffer[] = [];
	req.on("data", (chunk: Buffer) => chunks.push(chunk));
	req.once("end", () => {
		try {
			done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
		} catch (err) {
			failed(err);
		}
	});
}

/** The body's fields as the route's parser gives them, or null if it refuses them (422). */
function parsedCheckout(type: string, text: string): Record<string, unknown> | null {
	try {
		return parseCheckoutParams(type, text);
	} catch {
		return null;
	}
}

/** The checkout's parameters if they are valid, else null (moleculer-web answers those). */
function validCheckout(
	door: SoldOutDoor,
	type: string,
	fields: Record<string, unknown>
): { showID: string; count: number } | null {
	// A copy: the check normalises and trims, and the route must get the fields as they came.
	const params = { ...fields };
	normaliseCheckoutParams(type, params);
	return door.validate(params) === true ? (params as { showID: string; count: number }) : null;
}

/**
 * Counts the refusal against the client's rate limit, then `then(false)` once the client is over
 * it. moleculer-web's own store counts at once; a store of another kind may answer later.
 */
function countAgainstRateLimit(
	limit: RouteRateLimit | null,
	req: IncomingMessage,
	res: ServerResponse,
	then: (withinLimit: boolean) => void,
	failed: (err: unknown) => void
): void {
	const key = limit?.key(req);
	if (!limit || !key) return then(true);
	const within = countRateLimitHit(limit, key, res);
	if (typeof within === "boolean") then(within);
	else within.then(then, () => then(true)).catch(failed);
}

/**
 * Takes a plain checkout (true) and either refuses it or hands it to `next` with its body read;
 * false for any other request, untouched.
 */
export function refuseKnownSoldOut(
	door: SoldOutDoor,
	req: IncomingMessage & { body?: unknown },
	res: ServerResponse,
	next: () => void
): boolean {
	const type = plainCheckoutType(req);
	if (!type) return false;
	const refuse = (outcome: "sold_out" | "invalid" | "rate_limited", err: Error) => {
		door.counted(outcome);
		sendErrorAnswer(req, res, err);
	};
	const failed = (err: unknown) => door.failed(req, res, err);
	readBody(
		req,
		body => {
			try {
				requireUtf8(req, res, body);
			} catch (err) {
				return bodyReadFailed(err, req, res, e => refuse("invalid", e as Error));
			}
			const text = body.toString("utf8");
			const fields = parsedCheckout(type, text);
			const checkout = fields && validCheckout(door, type, fields);
			if (
				!checkout ||
				checkout.count > door.maxTicketsPerOrder ||
				!isKnownSoldOut(door.cache, door.ttlMs, checkout.showID)
			) {
				// Parsed once: the route's parser leaves a body that is no longer text alone. One
				// that did not parse goes on as text, for the parser to refuse in its own words.
				req.body = fields ?? text;
				return next();
			}
			countAgainstRateLimit(
				door.rateLimit,
				req,
				res,
				withinLimit => {
					if (!withinLimit) return refuse("rate_limited", new RateLimitExceeded());
					door.counted("sold_out");
					sendSoldOut(res, checkout.count);
				},
				failed
			);
		},
		failed
	);
	return true;
}

/** The refusal for each count, described once: it never changes. */
const soldOutAnswers = new Map<number, HttpError>();

function sendSoldOut(res: ServerResponse, count: number): void {
	let answer = soldOutAnswers.get(count);
	if (answer === undefined) {
		answer = describeError(notEnoughSeats(count, 0));
		soldOutAnswers.set(count, answer);
	}
	writeErrorAnswer(res, answer);
}
