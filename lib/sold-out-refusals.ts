/**
 * Checkouts for a show that the gateway knows to be sold out, refused at the front door. After an
 * on-sale most checkouts are for sold-out shows, and through moleculer-web each costs several
 * times a refusal here: the body parser, the route and its middlewares, a broker call and an error
 * with its stack. The store still decides every booking: only a show that this node's fresh list
 * shows with no seat left is refused here (`knownSoldOut`).
 *
 * Only a plain checkout takes this path: `POST /reserve` without a query string or an
 * Idempotency-Key (a replay must get its first answer), with an unencoded UTF-8 JSON or form body
 * whose Content-Length is within the limit. Its body is read here. Anything but a valid checkout of
 * a sold-out show goes on to moleculer-web with the body read (body-parser passes a finished
 * request by), and is answered there exactly as before, rate limit included.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import ApiGateway from "moleculer-web";
import { appConfig } from "../moleculer.config";
import { normaliseCheckoutParams, sendErrorAnswer } from "./http-guards";
import { bodyReadFailed, parseCheckoutParams, requireUtf8 } from "./request-body";
import { knownSoldOut, type ShowListCache } from "./show-list-cache";

/** moleculer-web's rate limit of a route, as it keeps it (`route.rateLimit`). */
export interface RouteRateLimit {
	limit: number;
	headers: boolean;
	key(req: IncomingMessage): string | undefined;
	store: { inc(key: string): number | Promise<number>; resetTime: number };
}

export interface SoldOutDoor {
	cache: ShowListCache;
	ttlMs: number;
	maxTicketsPerOrder: number;
	/** The checkout action's own parameter check. */
	validate(params: Record<string, unknown>): true | unknown[];
	rateLimit: RouteRateLimit | null;
	/** Counts a refusal in `tickets_checkouts_total`. */
	counted(outcome: "sold_out" | "invalid" | "rate_limited"): void;
}

/** moleculer-web's own refusal, as its rate limiter raises it (no type). */
const RateLimitExceeded = ApiGateway.Errors.RateLimitExceeded as unknown as new () => Error;

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

function readBody(req: IncomingMessage): Promise<Buffer> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		req.on("data", (chunk: Buffer) => chunks.push(chunk));
		req.once("end", () => resolve(Buffer.concat(chunks)));
		// Cut off (the door's 408 closes the connection): nothing to answer any more.
		req.once("close", () => reject(new Error("request closed before its body arrived")));
	});
}

/** The checkout's parameters if they are valid, else null (moleculer-web answers those). */
function validCheckout(
	door: SoldOutDoor,
	type: string,
	text: string
): { showID: string; count: number } | null {
	let params: Record<string, unknown>;
	try {
		params = parseCheckoutParams(type, text);
	} catch {
		return null;
	}
	normaliseCheckoutParams(type, params);
	if (door.validate(params) !== true) return null;
	return params as { showID: string; count: number };
}

/** Counts the refusal against the client's rate limit; false once the client is over it. */
async function withinRateLimit(
	limit: RouteRateLimit | null,
	req: IncomingMessage,
	res: ServerResponse
): Promise<boolean> {
	const key = limit?.key(req);
	if (!limit || !key) return true;
	const remaining = limit.limit - (await limit.store.inc(key));
	if (limit.headers) {
		res.setHeader("X-Rate-Limit-Limit", limit.limit);
		res.setHeader("X-Rate-Limit-Remaining", Math.max(0, remaining));
		res.setHeader("X-Rate-Limit-Reset", limit.store.resetTime);
	}
	return remaining >= 0;
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
	readBody(req).then(
		async body => {
			try {
				requireUtf8(req, res, body);
			} catch (err) {
				return bodyReadFailed(err, req, res, e => refuse("invalid", e as Error));
			}
			const text = body.toString("utf8");
			const checkout = validCheckout(door, type, text);
			const soldOut =
				checkout && checkout.count <= door.maxTicketsPerOrder
					? knownSoldOut(door.cache, door.ttlMs, checkout.showID, checkout.count)
					: null;
			if (!soldOut) {
				req.body = text;
				return next();
			}
			if (!(await withinRateLimit(door.rateLimit, req, res)))
				return refuse("rate_limited", new RateLimitExceeded());
			refuse("sold_out", soldOut);
		},
		() => undefined
	);
	return true;
}
