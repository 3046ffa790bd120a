/**
 * `api` is the only door for clients: a moleculer-web gateway that serves exactly the routes of
 * docs/api.md and orchestrates the checkout (lib/checkout/checkout-saga.ts), so that no client has to.
 * Every request passes its front door first (lib/gateway/front-door.ts, with the HTTP guards of
 * lib/gateway/http-guards.ts); its cached show list lives in lib/gateway/show-list-cache.ts, the reads from it in
 * lib/gateway/show-reads.ts.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import { appConfig } from "../lib/common/config";
import { reservationNotFound } from "../lib/common/errors";
import { sendErrorAnswer } from "../lib/gateway/error-answers";
import { callActionsOnThisNode, listenForCrowds } from "../lib/gateway/moleculer-web-internals";
import { CHECKOUT_PARAMS, CHECKOUTS } from "../lib/gateway/checkout-route";
import { openFrontDoor, type FrontDoor } from "../lib/gateway/front-door";
import { createAdmissionGate } from "../lib/gateway/admission";
import {
	runCheckout,
	type BookingAnswer,
	type CheckoutMeta,
	type CheckoutParams
} from "../lib/checkout/checkout-saga";
import {
	createShowListCache,
	forgetShows,
	loadShows,
	knownSoldOut,
	patchShow,
	type ShowListCache
} from "../lib/gateway/show-list-cache";
import { DEFAULT_PAGE, readActions } from "../lib/gateway/show-reads";
import { buildOpenApiDocument } from "../lib/gateway/openapi";
import type { OpenApiDocument } from "../lib/gateway/openapi-types";
import { ROUTE_TABLE, publicRoutes, type RouteEntry } from "../lib/gateway/route-table";
import { routesFromTable } from "../lib/gateway/gateway-routes";
import { assetOptions, publicFolder } from "../lib/gateway/box-office";
import { createEventStream, type EventStream } from "../lib/gateway/event-stream";
import { clientAddress } from "../lib/gateway/client-address";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import type { PublicShow, Reservation, ShowState } from "../lib/common/types";
import { quarantinedLines } from "../lib/store/store-quarantine";

export type { BookingAnswer } from "../lib/checkout/checkout-saga";

interface ApiSettings extends ServiceSettingSchema {
	maxTicketsPerOrder: number;
	showsCacheTtlMs: number;
	routeTable: readonly RouteEntry[];
	[key: string]: unknown;
}

interface ApiMethods extends MetricsMethods {
	resyncShows(): void;
	httpHandler(req: IncomingMessage, res: ServerResponse, next: () => void): unknown;
}

/** The show's seats after a write this request made, handed back by shows (see ShowState). */
interface SeatsMeta {
	showState?: ShowState;
}

interface ApiLocals {
	showsCache: ShowListCache;
	eventStream: EventStream;
	frontDoor: FrontDoor;
	openApiDocument: OpenApiDocument;
}

/** What a checkout needs; health is "ok" only when each is reachable. */
const CHECKOUT_ACTIONS = ["shows.holdSeats", "reservations.create"];

const RESERVATION_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;

const ApiService: ServiceSchema<ApiSettings, ApiMethods, ApiLocals> = {
	name: "api",

	mixins: [
		ApiGateway as unknown as ServiceSchema,
		createMetricsMixin([
			{
				name: CHECKOUTS,
				description:
					"Checkouts by outcome: booked, sold_out, invalid, rate_limited, busy, failed",
				labelNames: ["outcome"]
			}
		])
	],

	settings: {
		port: appConfig.port,
		ip: "0.0.0.0",
		maxTicketsPerOrder: appConfig.maxTicketsPerOrder,
		showsCacheTtlMs: appConfig.showsCacheTtlMs,
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
		// Every public route is an entry of the route table (lib/gateway/route-table.ts).
		routeTable: ROUTE_TABLE,
		routes: routesFromTable(ROUTE_TABLE),
		// The box-office page (public/box-office/): only what is in that folder, with its own CSP.
		assets: { folder: publicFolder(), options: assetOptions },
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
					uptime: Math.round(process.uptime()),
					// Unreadable store lines set aside at start: the operator has work to do.
					quarantined: quarantinedLines(this.broker)
				};
			}
		},

		/** The OpenAPI 3 description of exactly the public routes. */
		openapi: {
			params: {},
			handler() {
				return this.openApiDocument;
			}
		},

		...readActions,

		checkout: {
			params: CHECKOUT_PARAMS,
			async handler(
				ctx: Context<CheckoutParams, CheckoutMeta & SeatsMeta>
			): Promise<BookingAnswer> {
				// A show this node knows to be sold out is refused without touching a store; a
				// show with seats left always asks the store, which decides every booking.
				const { showID, count } = ctx.params;
				const ttl = this.settings.showsCacheTtlMs;
				// A list past its safety TTL is refreshed in the background, so checkouts keep
				// knowing even when nobody reads the list (an on-sale longer than the TTL).
				if (ttl > 0) loadShows(this.showsCache, ctx, ttl).catch(() => undefined);
				// A repeated Idempotency-Key gets its first answer, even once the show sold out.
				const soldOut = ctx.meta.idempotencyKey
					? null
					: knownSoldOut(this.showsCache, ttl, showID, count);
				if (soldOut && count <= this.settings.maxTicketsPerOrder) throw soldOut;
				const booking = await runCheckout(
					this,
					ctx,
					this.settings.maxTicketsPerOrder,
					appConfig.checkoutTimeoutMs
				);
				// The client's next read shows its booking, event or not.
				if (ctx.meta.showState) patchShow(this.showsCache, ctx.meta.showState);
				return booking;
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
			async handler(ctx: Context<{ id: string }, SeatsMeta>) {
				const { id } = ctx.params;
				if (!RESERVATION_ID_PATTERN.test(id)) throw reservationNotFound(id);
				const reservation = await ctx.call<Reservation, object>("reservations.cancel", {
					id
				});
				if (ctx.meta.showState) patchShow(this.showsCache, ctx.meta.showState);
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
		"shows.changed"(ctx: Context<PublicShow>) {
			patchShow(this.showsCache, ctx.params);
			this.eventStream.publish(ctx.params);
		},

		// A shows node's events never came here: it wrote before it knew of this node, or while its
		// own link was down.
		"shows.resync"(ctx: Context<{ nodeIDs: string[] }>) {
			if (ctx.params.nodeIDs.includes(this.broker.nodeID)) this.resyncShows();
		},

		// Events may have been missed while this node was cut off from the others.
		"$transporter.connected"() {
			this.resyncShows();
		}
	},

	methods: {
		/** Reads the show list afresh, and tells the event streams' clients where every show stands. */
		resyncShows() {
			forgetShows(this.showsCache);
			this.eventStream.resync();
		},

		/** Every request passes the front door (lib/gateway/front-door.ts) before moleculer-web routes it. */
		httpHandler(req: IncomingMessage, res: ServerResponse, next: () => void) {
			return this.frontDoor.pass(req, res, next);
		}
	},

	created() {
		this.showsCache = createShowListCache();
		this.eventStream = createEventStream({
			maxStreams: appConfig.eventsMaxStreams,
			maxStreamsPerClient: appConfig.eventsMaxStreamsPerClient,
			clientOf: clientAddress,
			heartbeatMs: appConfig.eventsHeartbeatMs,
			backlog: appConfig.eventsBacklog,
			maxStreamMs: appConfig.eventsMaxStreamMs,
			loadShows: ctx => loadShows(this.showsCache, ctx!, this.settings.showsCacheTtlMs),
			logger: this.logger
		});
		const validate = this.broker.validator!.compile(CHECKOUT_PARAMS);
		// A request runs its action here, never on another gateway node that may be leaving.
		callActionsOnThisNode(this, this.broker.nodeID);
		listenForCrowds(this, {
			backlog: appConfig.listenBacklog,
			sockets: appConfig.listenSockets,
			keepAliveTimeoutMs: appConfig.keepAliveTimeoutMs,
			failed: err =>
				this.logger.warn(
					"The gateway listens on fewer sockets than LISTEN_SOCKETS:",
					err.message
				)
		});
		const table = this.settings.routeTable;
		this.openApiDocument = buildOpenApiDocument(this.settings.maxTicketsPerOrder, table);
		this.frontDoor = openFrontDoor(this, {
			routes: publicRoutes(table),
			cache: this.showsCache,
			ttlMs: this.settings.showsCacheTtlMs,
			pageSize: DEFAULT_PAGE,
			maxAgeSeconds: appConfig.readMaxAgeSeconds,
			maxTicketsPerOrder: this.settings.maxTicketsPerOrder,
			validate: params => validate(params) as true | unknown[],
			counted: outcome => this.countMetric(CHECKOUTS, { outcome }),
			admission: createAdmissionGate({
				concurrency: appConfig.admissionConcurrency,
				queueSize: appConfig.admissionQueue,
				maxWaitMs: appConfig.admissionQueueWaitMs,
				retryAfterS: appConfig.admissionRetryAfterS,
				refused: () => this.countMetric(CHECKOUTS, { outcome: "busy" })
			})
		});
	},

	/** Before the server closes: it waits for open connections, and a stream never ends itself. */
	stopped() {
		this.eventStream.close();
	}
};

export default ApiService;
