/**
 * The `POST /reserve` route of the gateway: how a checkout's body is read (lib/gateway/request-body.ts),
 * its rate limit and Idempotency-Key, and how its outcomes are counted in
 * `tickets_checkouts_total`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "moleculer";
import { appConfig } from "../common/config";
import type { CheckoutMeta } from "../checkout/checkout-saga";
import { clientAddress } from "./client-address";
import { describeError } from "./http-errors";
import { acceptCheckoutBody, acceptIdempotencyKey, type RequestWithParams } from "./http-guards";
import { sendErrorAnswer } from "./error-answers";
import { bodyReadFailed, parseCheckoutBody, requireUtf8 } from "./request-body";
import type { MetricsMethods } from "../common/metrics";
import { plainText } from "../common/text";

export const CHECKOUTS = "tickets_checkouts_total";

export const SHOW_ID_PATTERN = /^[0-9a-fA-F]{24}$/;

/** What `api.checkout` accepts; the front door checks a sold-out show's checkouts with it too. */
export const CHECKOUT_PARAMS = {
	showID: { type: "string", pattern: SHOW_ID_PATTERN },
	name: { type: "string", trim: true, min: 1, custom: plainText(100) },
	count: { type: "number", integer: true, min: 1 }
} as const;

/**
 * A gateway call gets the whole checkout budget and is never retried as a whole: a retry would run
 * the saga again beside a first attempt that may still be going. The steps inside retry instead,
 * each idempotent by the checkout id.
 */
export const GATEWAY_CALL_OPTIONS = { timeout: appConfig.checkoutTimeoutMs, retries: 0 };

/** How a refused checkout counts in `tickets_checkouts_total`. */
function checkoutOutcome(status: number, type: string | undefined): string {
	if (status === 409 && type === "NOT_ENOUGH_SEATS") return "sold_out";
	if (status === 429) return "rate_limited";
	if (status >= 400 && status < 500 && status !== 409) return "invalid";
	return "failed";
}

export const checkoutRoute = {
	name: "checkout",
	path: "",
	mappingPolicy: "restrict",
	// JSON and forms arrive as text and are parsed by `parseCheckoutBody`, which refuses what
	// JSON.parse and qs let through (prototype keys, repeated keys, deep nesting).
	bodyParsers: {
		json: false,
		urlencoded: false,
		text: {
			type: ["application/json", "application/x-www-form-urlencoded"],
			limit: appConfig.bodyLimitBytes,
			verify: requireUtf8
		}
	},
	use: [bodyReadFailed, parseCheckoutBody],
	callOptions: GATEWAY_CALL_OPTIONS,
	...(appConfig.rateLimitPerMinute > 0
		? {
				rateLimit: {
					window: 60 * 1000,
					limit: appConfig.rateLimitPerMinute,
					headers: true,
					key: clientAddress
				}
			}
		: {}),
	onBeforeCall(ctx: Context<unknown, CheckoutMeta>, _route: unknown, req: RequestWithParams) {
		acceptCheckoutBody(req);
		ctx.meta.idempotencyKey = acceptIdempotencyKey(req);
	},
	onAfterCall(
		this: MetricsMethods,
		_ctx: Context,
		_route: unknown,
		_req: unknown,
		_res: unknown,
		data: unknown
	) {
		this.countMetric(CHECKOUTS, { outcome: "booked" });
		return data;
	},
	onError(this: MetricsMethods, req: IncomingMessage, res: ServerResponse, err: Error) {
		const { status, body } = describeError(err);
		this.countMetric(CHECKOUTS, { outcome: checkoutOutcome(status, body.type) });
		sendErrorAnswer(req, res, err);
	}
};
