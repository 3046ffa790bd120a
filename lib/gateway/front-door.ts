/**
 * The gateway's front door: every request passes it before moleculer-web routes it. It guards and
 * logs (lib/gateway/http-guards.ts), gives its own answers the CORS headers moleculer-web would have
 * added, answers warm reads from the cached bytes (lib/gateway/show-reads.ts) and refuses checkouts of
 * shows known to be sold out (lib/gateway/sold-out-refusals.ts). Node's own refusals (431 headers too
 * large, 400 unparsable request) get a JSON body too (lib/gateway/socket-refusals.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import ApiGateway from "moleculer-web";
import { admitCheckout, refuseWhenFull, type AdmissionGate } from "./admission";
import { checkoutRoute } from "./checkout-route";
import { guardAndLog } from "./http-guards";
import { answerClientError, refuseConnect } from "./socket-refusals";
import { answerCachedRead, type ReadOptions } from "./show-reads";
import { refuseKnownSoldOut, type RouteRateLimit, type SoldOutDoor } from "./sold-out-refusals";

/** What the front door needs of moleculer-web's routes. */
export interface GatewayRoute {
	name?: string;
	cors?: object | null;
	rateLimit?: RouteRateLimit;
}

interface GatewayInternals {
	routes: GatewayRoute[];
	writeCorsHeaders(
		route: GatewayRoute,
		req: IncomingMessage,
		res: ServerResponse,
		preflight: boolean
	): void;
}

const gatewayHttpHandler = (
	ApiGateway as unknown as {
		methods: {
			httpHandler: (req: IncomingMessage, res: ServerResponse, next: unknown) => unknown;
		};
	}
).methods.httpHandler;

export interface FrontDoor {
	/** Takes a request through the door, then (if nothing here answered it) to moleculer-web. */
	pass(req: IncomingMessage, res: ServerResponse, next: () => void): unknown;
}

/** What the door needs to know: the sold-out door's settings and how warm reads are answered. */
export type FrontDoorOptions = Omit<SoldOutDoor, "rateLimit"> &
	Pick<ReadOptions, "pageSize" | "maxAgeSeconds"> & { admission?: AdmissionGate };

/**
 * The front door of a moleculer-web gateway service, opened in its `created` (its routes are made
 * by then); the service's `httpHandler` passes every request to it.
 */
export function openFrontDoor(
	gateway: { logger: { info(...args: unknown[]): void } },
	options: FrontDoorOptions
): FrontDoor {
	const { cache, ttlMs, pageSize, maxAgeSeconds } = options;
	const internals = gateway as unknown as GatewayInternals;
	const { routes } = internals;
	// moleculer-web's CORS settings of the routes, for answers given before routing.
	const corsRoute = routes.find(r => r.cors) ?? null;
	const readOptions: ReadOptions = { ttlMs, pageSize, maxAgeSeconds };
	const soldOutDoor: SoldOutDoor = {
		cache,
		ttlMs,
		maxTicketsPerOrder: options.maxTicketsPerOrder,
		validate: options.validate,
		rateLimit: routes.find(r => r.name === checkoutRoute.name)?.rateLimit ?? null,
		counted: options.counted
	};
	const server = (gateway as unknown as { server?: Server }).server;
	server?.on("clientError", answerClientError);
	server?.on("connect", refuseConnect);
	return {
		pass(req, res, next) {
			if (guardAndLog(gateway.logger, req, res)) return;
			// Answers given here carry the CORS headers moleculer-web would have added.
			if (corsRoute && req.headers.origin)
				internals.writeCorsHeaders(corsRoute, req, res, false);
			// A warm read is answered from the cached bytes, without routing or a broker call.
			if (answerCachedRead(cache, req, res, readOptions)) return;
			const handle = () => gatewayHttpHandler.call(gateway, req, res, next);
			const route = () => admitCheckout(options.admission, req, res, handle);
			if (refuseWhenFull(options.admission, req, res)) return;
			if (refuseKnownSoldOut(soldOutDoor, req, res, route)) return;
			return route();
		}
	};
}
