/**
 * `api` is the only door for clients: a moleculer-web gateway that serves exactly the routes of
 * shared/CONTRACT.md and orchestrates the checkout, so that no client has to.
 *
 * The checkout is a saga keyed by a checkout id (from the Idempotency-Key when given):
 *   hold seats (shows) → record the reservation as pending (reservations) → confirm the hold, the
 *   pivot after which the seats are sold → confirm the reservation.
 * Every step is idempotent by the checkout id, so a retry or a replay changes nothing. A failure
 * before the pivot releases what this attempt held; a failure whose outcome is unknown leaves the
 * checkout pending, for the reservations reconciler to settle by where its seats stand.
 */
import crypto from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { Errors } from "moleculer";
import ApiGateway from "moleculer-web";
import { appConfig } from "../moleculer.config";
import {
	checkoutFailed,
	idempotencyKeyReused,
	reservationNotFound,
	showNotFound,
	tooManyTickets
} from "../lib/errors";
import { describeError } from "../lib/http-errors";
import { openApiDocument } from "../lib/openapi";
import { atMostChars } from "../lib/text";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import type { HoldView, PublicShow, Reservation } from "../lib/types";
import type { ReservationDoc } from "./reservations.service";

const { MoleculerClientError } = Errors;

interface CheckoutParams {
	showID: string;
	name: string;
	count: number;
}

interface CheckoutMeta {
	idempotencyKey?: string;
	/** Chosen once per HTTP request, so that nothing downstream can book it twice. */
	checkoutId?: string;
	$statusCode?: number;
	$location?: string;
	$responseHeaders?: Record<string, string>;
}

export interface BookingAnswer {
	success: true;
	_id: string;
	showID: string;
	name: string;
	guests: number;
	status: Reservation["status"];
}

interface ApiSettings extends ServiceSettingSchema {
	maxTicketsPerOrder: number;
	showsCacheTtlMs: number;
	[key: string]: unknown;
}

interface ShowsCache {
	shows: PublicShow[] | null;
	byId: Map<string, PublicShow>;
	fetchedAt: number;
	/** Bumped by every change event, so a fetch that raced a change is not cached. */
	generation: number;
	refreshing: Promise<PublicShow[]> | null;
}

interface ApiMethods extends MetricsMethods {
	loadShows(ctx: Context): Promise<PublicShow[]>;
	resumeCheckout(
		ctx: Context<CheckoutParams, CheckoutMeta>,
		checkoutId: string,
		fingerprint: string,
		resume?: boolean
	): Promise<BookingAnswer>;
	releaseQuietly(showID: string, holdId: string): Promise<void>;
}

interface ApiLocals {
	showsCache: ShowsCache;
}

const CHECKOUTS = "tickets_checkouts_total";

/** What a checkout needs; health is "ok" only when each is reachable. */
const CHECKOUT_ACTIONS = ["shows.holdSeats", "reservations.create"];

/** Shows per page of GET /, by default and at most. */
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
/** Shows per `shows.list` call when filling the cache: well inside NATS's 1 MB message limit. */
const FETCH_PAGE = 5000;

const SHOW_ID_PATTERN = /^[0-9a-fA-F]{24}$/;
const RESERVATION_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

function sha256(text: string): string {
	return crypto.createHash("sha256").update(text).digest("hex");
}

function bookingAnswer(reservation: Reservation): BookingAnswer {
	return {
		success: true,
		_id: reservation._id,
		showID: reservation.showID,
		name: reservation.name,
		guests: reservation.guests,
		status: reservation.status
	};
}

function clientAddress(req: IncomingMessage): string {
	if (appConfig.trustProxy) {
		const forwarded = req.headers["x-forwarded-for"];
		const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim();
		if (first) return first;
	}
	return req.socket.remoteAddress ?? "unknown";
}

function isClientError(err: unknown): boolean {
	const code = (err as { code?: number }).code ?? 500;
	return code >= 400 && code < 500 && !(err as { retryable?: boolean }).retryable;
}

function setSecurityHeaders(res: ServerResponse): void {
	res.setHeader("X-Content-Type-Options", "nosniff");
	res.setHeader("X-Frame-Options", "DENY");
	res.setHeader("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	res.setHeader("Referrer-Policy", "no-referrer");
	res.setHeader("Cache-Control", "no-store");
}

/** Security headers on every answer; one access-log line per request, with no personal data. */
function guardAndLog(
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
function acceptCheckoutBody(req: IncomingMessage & { $params?: Record<string, unknown> }): void {
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

/**
 * A gateway call gets the whole checkout budget and is never retried as a whole: a retry would run
 * the saga again beside a first attempt that may still be going. The steps inside retry instead,
 * each idempotent by the checkout id.
 */
const GATEWAY_CALL_OPTIONS = { timeout: appConfig.checkoutTimeoutMs, retries: 0 };

/** The one place where errors become HTTP answers. */
function sendErrorAnswer(_req: IncomingMessage, res: ServerResponse, err: Error): void {
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

/** How a refused checkout counts in `tickets_checkouts_total`. */
function checkoutOutcome(status: number, type: string | undefined): string {
	if (status === 409 && type === "NOT_ENOUGH_SEATS") return "sold_out";
	if (status === 429) return "rate_limited";
	if (status >= 400 && status < 500 && status !== 409) return "invalid";
	return "failed";
}

/** `limit` and `offset` in a query: plain digits only, never "", "0x10", "1e2", "+1" or " 5". */
function acceptPageQuery(params: Record<string, unknown>): void {
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

const checkoutRoute = {
	name: "checkout",
	path: "",
	mappingPolicy: "restrict",
	aliases: { "POST /reserve": "api.checkout" },
	bodyParsers: {
		json: { strict: true, limit: appConfig.bodyLimitBytes },
		urlencoded: { extended: false, limit: appConfig.bodyLimitBytes }
	},
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
	onBeforeCall(
		ctx: Context<unknown, CheckoutMeta>,
		_route: unknown,
		req: IncomingMessage & { $params?: Record<string, unknown> }
	) {
		acceptCheckoutBody(req);
		ctx.meta.checkoutId = crypto.randomUUID().replace(/-/g, "");
		const key = req.headers["idempotency-key"];
		if (key !== undefined) {
			if (typeof key !== "string" || !IDEMPOTENCY_KEY_PATTERN.test(key))
				throw new MoleculerClientError(
					"Idempotency-Key must be 1 to 255 visible ASCII characters",
					422,
					"INVALID_IDEMPOTENCY_KEY"
				);
			ctx.meta.idempotencyKey = key;
		}
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

const ApiService: ServiceSchema<ApiSettings, ApiMethods, ApiLocals> = {
	name: "api",

	mixins: [
		ApiGateway as unknown as ServiceSchema,
		createMetricsMixin([
			{
				name: CHECKOUTS,
				description:
					"Checkouts by outcome: booked, sold_out, invalid, rate_limited, failed",
				labelNames: ["outcome"]
			}
		])
	],

	settings: {
		port: appConfig.port,
		ip: "0.0.0.0",
		maxTicketsPerOrder: appConfig.maxTicketsPerOrder,
		showsCacheTtlMs: appConfig.showsCacheTtlMs,
		use: [guardAndLog],
		// moleculer-web's own request logging is replaced by `guardAndLog`.
		logRequest: null,
		logResponse: null,
		log4XXResponses: false,
		httpServerTimeout: 30 * 1000,
		// moleculer-web runs each HTTP request as a call of its own `rest` action; retrying that would
		// run a checkout twice under a new checkout id.
		rootCallOptions: { retries: 0 },
		...(appConfig.corsOrigins.length > 0
			? {
					cors: {
						origin: appConfig.corsOrigins,
						methods: ["GET", "POST", "DELETE", "OPTIONS"],
						allowedHeaders: ["Content-Type", "Idempotency-Key"],
						exposedHeaders: ["Retry-After", "Idempotent-Replayed"],
						maxAge: 600
					}
				}
			: {}),
		routes: [
			{
				name: "reads",
				path: "",
				mappingPolicy: "restrict",
				aliases: {
					"GET /": "api.listShows",
					"GET /shows/:id": "api.getShow",
					"GET /reservations/:id": "api.getReservation",
					"DELETE /reservations/:id": "api.cancelReservation",
					"GET /health": "api.health",
					"GET /openapi.json": "api.openapi"
				},
				bodyParsers: false,
				callOptions: GATEWAY_CALL_OPTIONS,
				onBeforeCall(
					_ctx: Context,
					_route: unknown,
					req: IncomingMessage & { $params?: Record<string, unknown> }
				) {
					acceptPageQuery(req.$params ?? {});
				}
			},
			checkoutRoute
		],
		onError: sendErrorAnswer
	},

	actions: {
		/** Ready to take checkouts: connected to the cluster, and shows and reservations reachable. */
		health: {
			params: {},
			handler(ctx: Context<unknown, CheckoutMeta>) {
				const transit = this.broker.transit;
				const broker = transit ? transit.connected : true;
				const services = Object.fromEntries(
					CHECKOUT_ACTIONS.map(action => [
						action.split(".")[0],
						this.broker.registry.actions.isAvailable(action)
					])
				);
				const ready = broker && Object.values(services).every(Boolean);
				if (!ready) {
					ctx.meta.$statusCode = 503;
					ctx.meta.$responseHeaders = { "Retry-After": "2" };
				}
				return {
					status: ready ? "ok" : "unavailable",
					nodeID: this.broker.nodeID,
					broker: broker ? "connected" : "disconnected",
					services,
					uptime: Math.round(process.uptime())
				};
			}
		},

		/** The OpenAPI 3 description of exactly the public routes. */
		openapi: {
			params: {},
			handler() {
				return openApiDocument;
			}
		},

		/**
		 * The shows, a page at a time (default 100) so that the answer stays small however many
		 * shows there are; `Link: <…>; rel="next"` and `X-Total-Count` tell what else there is.
		 */
		listShows: {
			params: {
				limit: {
					type: "number",
					integer: true,
					min: 1,
					max: MAX_PAGE,
					optional: true,
					convert: true
				},
				offset: { type: "number", integer: true, min: 0, optional: true, convert: true }
			},
			async handler(
				ctx: Context<{ limit?: number; offset?: number }, CheckoutMeta>
			): Promise<PublicShow[]> {
				const limit = ctx.params.limit ?? DEFAULT_PAGE;
				const offset = ctx.params.offset ?? 0;
				const shows = await this.loadShows(ctx);
				const headers: Record<string, string> = { "X-Total-Count": String(shows.length) };
				if (offset + limit < shows.length)
					headers.Link = `</?limit=${limit}&offset=${offset + limit}>; rel="next"`;
				ctx.meta.$responseHeaders = headers;
				return offset === 0 && limit >= shows.length
					? shows
					: shows.slice(offset, offset + limit);
			}
		},

		getShow: {
			params: { id: { type: "string", max: 64 } },
			async handler(ctx: Context<{ id: string }>): Promise<PublicShow> {
				const { id } = ctx.params;
				if (!SHOW_ID_PATTERN.test(id)) throw showNotFound(id);
				return ctx.call("shows.get", { showID: id });
			}
		},

		checkout: {
			params: {
				showID: { type: "string", pattern: SHOW_ID_PATTERN },
				name: { type: "string", trim: true, min: 1, custom: atMostChars(100) },
				count: { type: "number", integer: true, min: 1 }
			},
			async handler(ctx: Context<CheckoutParams, CheckoutMeta>): Promise<BookingAnswer> {
				const { showID, name, count } = ctx.params;
				if (count > this.settings.maxTicketsPerOrder)
					throw tooManyTickets(count, this.settings.maxTicketsPerOrder);
				const fingerprint = sha256(`${showID}\n${name}\n${count}`).slice(0, 32);
				const key = ctx.meta.idempotencyKey;
				if (!key)
					return this.resumeCheckout(
						ctx,
						crypto.randomUUID().replace(/-/g, ""),
						fingerprint
					);

				// The key names the checkout, so a retry finds the first attempt's records.
				const checkoutId = sha256(`idempotency-key\n${key}`).slice(0, 32);
				const earlier = await ctx.call<ReservationDoc | null, object>(
					"reservations.findCheckout",
					{ id: checkoutId }
				);
				if (earlier) {
					if (earlier.fingerprint !== fingerprint) throw idempotencyKeyReused();
					if (earlier.status === "failed") throw checkoutFailed(checkoutId);
					if (earlier.status !== "pending") {
						ctx.meta.$statusCode = 201;
						ctx.meta.$location = `/reservations/${earlier._id}`;
						ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
						return bookingAnswer(earlier);
					}
				}
				// New, or pending after an earlier attempt died: run (or finish) the saga.
				return this.resumeCheckout(ctx, checkoutId, fingerprint, Boolean(earlier));
			}
		},

		getReservation: {
			params: { id: { type: "string", max: 128 } },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const { id } = ctx.params;
				if (!RESERVATION_ID_PATTERN.test(id)) throw reservationNotFound(id);
				return ctx.call("reservations.get", { id });
			}
		},

		cancelReservation: {
			params: { id: { type: "string", max: 128 } },
			async handler(ctx: Context<{ id: string }>) {
				const { id } = ctx.params;
				if (!RESERVATION_ID_PATTERN.test(id)) throw reservationNotFound(id);
				const reservation = await ctx.call<Reservation, object>("reservations.cancel", {
					id
				});
				return {
					canceled: true,
					_id: reservation._id,
					showID: reservation.showID,
					name: reservation.name,
					guests: reservation.guests
				};
			}
		}
	},

	events: {
		/** A show's seats or size changed somewhere: patch the cached list in place. */
		"shows.changed"(ctx: Context<PublicShow>) {
			const cache = this.showsCache;
			cache.generation++;
			if (!cache.shows) return;
			const show = ctx.params;
			const cached = cache.byId.get(show._id);
			// A new show: refetch, so the list keeps the store's order.
			if (cached) Object.assign(cached, show);
			else cache.shows = null;
		},

		// Events may have been missed while this node was cut off from the others.
		"$transporter.connected"() {
			this.showsCache.shows = null;
		}
	},

	methods: {
		/**
		 * The show list from cache, refreshed when it is older than the safety TTL. Concurrent
		 * readers share one refresh, fetched in pages that each fit in one broker message.
		 */
		loadShows(ctx: Context): Promise<PublicShow[]> {
			const cache = this.showsCache;
			if (cache.shows && Date.now() - cache.fetchedAt < this.settings.showsCacheTtlMs)
				return Promise.resolve(cache.shows);
			if (cache.refreshing) return cache.refreshing;
			const generation = cache.generation;
			const refresh = (async () => {
				const shows: PublicShow[] = [];
				for (;;) {
					const page = await ctx.call<PublicShow[], object>("shows.list", {
						offset: shows.length,
						limit: FETCH_PAGE
					});
					shows.push(...page);
					if (page.length < FETCH_PAGE) break;
				}
				if (cache.generation === generation) {
					cache.shows = shows;
					cache.byId = new Map(shows.map(s => [s._id, s]));
					cache.fetchedAt = Date.now();
				}
				return shows;
			})();
			cache.refreshing = refresh;
			const clear = () => {
				if (cache.refreshing === refresh) cache.refreshing = null;
			};
			refresh.then(clear, clear);
			return refresh;
		},

		async resumeCheckout(
			ctx: Context<CheckoutParams, CheckoutMeta>,
			checkoutId: string,
			fingerprint: string,
			resume = false
		): Promise<BookingAnswer> {
			const { showID, name, count } = ctx.params;
			let hold: HoldView & { created: boolean };
			try {
				// `resume`: an earlier attempt may have sold these seats already; shows looks it up.
				hold = await ctx.call("shows.holdSeats", {
					showID,
					holdId: checkoutId,
					count,
					resume
				});
			} catch (err) {
				// A timeout leaves it unknown whether the hold happened: undo it in case it did.
				if (!isClientError(err)) await this.releaseQuietly(showID, checkoutId);
				throw err;
			}

			try {
				await ctx.call("reservations.create", {
					checkoutId,
					showID,
					name,
					guests: count,
					fingerprint
				});
			} catch (err) {
				// Only undo a hold this attempt made: a pre-existing one belongs to an earlier
				// attempt of this checkout, which the reconciler settles.
				if (hold.created) await this.releaseQuietly(showID, checkoutId);
				throw err;
			}

			try {
				await ctx.call("shows.confirmHold", { showID, holdId: checkoutId });
			} catch (err) {
				if (isClientError(err)) {
					// The hold expired before we got here: the seats are gone, the checkout failed.
					await ctx
						.call("reservations.fail", { id: checkoutId, reason: "hold lost" })
						.catch(() => undefined);
				}
				// Otherwise the outcome is unknown: the checkout stays pending for the reconciler.
				throw err;
			}

			// Past the pivot the seats are sold; the confirmation is retried, never compensated.
			const reservation = await ctx.call<Reservation, object>(
				"reservations.confirm",
				{ id: checkoutId },
				{ retries: 3 }
			);
			ctx.meta.$statusCode = 201;
			ctx.meta.$location = `/reservations/${reservation._id}`;
			return bookingAnswer(reservation);
		},

		async releaseQuietly(showID: string, holdId: string): Promise<void> {
			try {
				// Not through `ctx`: the checkout's time budget may be spent by now.
				await this.broker.call(
					"shows.releaseSeats",
					{ showID, holdId, onlyIfHeld: true },
					{ timeout: 5000 }
				);
			} catch (err) {
				this.logger.warn(
					`Could not release hold ${holdId} now; it expires by itself: ${(err as Error).message}`
				);
			}
		}
	},

	created() {
		this.showsCache = {
			shows: null,
			byId: new Map(),
			fetchedAt: 0,
			generation: 0,
			refreshing: null
		};
	}
};

export default ApiService;
