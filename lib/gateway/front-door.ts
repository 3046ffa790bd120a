/**
 * The gateway's front door: every request passes it before moleculer-web routes it. It guards and
 * logs (lib/gateway/http-guards.ts), gives its own answers the CORS headers moleculer-web would have
 * added, answers warm reads from the cached bytes (lib/gateway/show-reads.ts) and refuses checkouts of
 * shows known to be sold out (lib/gateway/sold-out-refusals.ts). Node's own refusals (431 headers too
 * large, 400 unparsable request or no Host, 417 an unknown Expect) get a JSON body too
 * (lib/gateway/socket-refusals.ts).
 *
 * Nothing thrown here may end the process (an exception in a request listener would): a throw, at
 * once or from a promise, becomes a JSON error answer, and the node serves on.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { admitCheckout, refuseWhenFull, type AdmissionGate } from "./admission";
import { checkoutRoute } from "./checkout-route";
import { guardAndLog } from "./http-guards";
import { sendErrorAnswer } from "./error-answers";
import { PAGE_FOLDER_BARE, pathOf, type PublicRoute } from "./route-table";
import { answerClientError, refuseConnect, refuseExpectation } from "./socket-refusals";
import { answerCachedRead, type ReadOptions } from "./show-reads";
import { refuseKnownSoldOut, type SoldOutDoor } from "./sold-out-refusals";
import {
	gatewayRoutes,
	routeRequest,
	writeCorsHeaders,
	type GatewayRoute
} from "./moleculer-web-internals";

export interface FrontDoor {
	/** Takes a request through the door, then (if nothing here answered it) to moleculer-web. */
	pass(req: IncomingMessage, res: ServerResponse, next: () => void): unknown;
}

/** What the door needs to know: the sold-out door's settings and how warm reads are answered. */
type FrontDoorOptions = Omit<SoldOutDoor, "rateLimit" | "failed"> &
	Pick<ReadOptions, "pageSize" | "maxAgeSeconds"> & {
		/** The public routes, from the route table: nothing else gets past the door. */
		routes: readonly PublicRoute[];
		/** Checkouts are admitted through it; none when the node admits all. */
		admission?: AdmissionGate;
	};

interface DoorLogger {
	info(...args: unknown[]): void;
	error(...args: unknown[]): void;
}

/**
 * A throw in the door becomes the error writer's answer (a 500 that names nothing of ours), or a
 * dropped connection when an answer has begun; it is logged with its stack.
 */
function answerFailure(
	logger: DoorLogger,
	req: IncomingMessage,
	res: ServerResponse,
	err: unknown
): void {
	logger.error("The front door failed on a request:", err);
	try {
		if (!res.headersSent) return sendErrorAnswer(req, res, err as Error);
	} catch (writeErr) {
		logger.error("The front door could not answer its failure:", writeErr);
	}
	res.destroy();
}

/** `run`, with whatever it throws, now or from its promise, answered by `answerFailure`. */
function guarded<T>(
	logger: DoorLogger,
	req: IncomingMessage,
	res: ServerResponse,
	run: () => T
): T | undefined {
	try {
		const result = run();
		// Any thenable: moleculer-web's own promises need not be native ones.
		const thenable = result as { then?: unknown } | undefined;
		if (typeof thenable?.then === "function")
			return Promise.resolve(result).catch(err => answerFailure(logger, req, res, err)) as T;
		return result;
	} catch (err) {
		answerFailure(logger, req, res, err);
		return undefined;
	}
}

/**
 * moleculer-web throws (uncaught) at an Origin its CORS settings do not list, and matches a listed
 * one by substring. The door lets only an exactly listed Origin through; any other, the page's own
 * included (a same-origin request needs no CORS headers), is dropped, so its answer comes without
 * CORS headers and a browser keeps it from a foreign page.
 */
function dropUnlistedOrigin(corsRoute: GatewayRoute | null, req: IncomingMessage): void {
	const origin = req.headers.origin;
	if (origin === undefined) return;
	const listed = corsRoute?.cors?.origin;
	const allowed =
		corsRoute !== null &&
		(listed === undefined ||
			listed === "*" ||
			listed === origin ||
			(Array.isArray(listed) && listed.includes(origin)));
	if (!allowed) delete req.headers.origin;
}

/** The page's folder asked for without its slash: sent on to the folder, never anywhere else. */
function redirectToPageFolder(res: ServerResponse): void {
	res.setHeader("Location", `${PAGE_FOLDER_BARE}/`);
	res.writeHead(301, { "Content-Length": "0" });
	res.end();
}

/**
 * The front door of a moleculer-web gateway service, opened in its `created` (its routes are made
 * by then); the service's `httpHandler` passes every request to it.
 */
export function openFrontDoor(
	gateway: { logger: DoorLogger },
	options: FrontDoorOptions
): FrontDoor {
	const { logger } = gateway;
	const { cache, ttlMs, pageSize, maxAgeSeconds } = options;
	const routes = gatewayRoutes(gateway);
	// moleculer-web's CORS settings of the routes, for answers given before routing.
	const corsRoute = routes.find(r => r.cors) ?? null;
	const readOptions: ReadOptions = { ttlMs, pageSize, maxAgeSeconds };
	const soldOutDoor: SoldOutDoor = {
		cache,
		ttlMs,
		maxTicketsPerOrder: options.maxTicketsPerOrder,
		validate: options.validate,
		rateLimit: routes.find(r => r.name === checkoutRoute.name)?.rateLimit ?? null,
		counted: options.counted,
		failed: (req, res, err) => answerFailure(logger, req, res, err)
	};
	const server = (gateway as unknown as { server?: Server & { requireHostHeader?: boolean } })
		.server;
	if (server) {
		// The door refuses a request without Host itself, in JSON (Node's own refusal is empty).
		server.requireHostHeader = false;
		server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
			guardedSocket(logger, socket, () => answerClientError(err, socket))
		);
		server.on("connect", (req: IncomingMessage, socket: Duplex) =>
			guardedSocket(logger, socket, () => refuseConnect(req, socket))
		);
		server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) =>
			guarded(logger, req, res, () => refuseExpectation(req, res))
		);
	}
	const enter = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
		dropUnlistedOrigin(corsRoute, req);
		if (guardAndLog(req, res, options.routes)) return;
		if (pathOf(req.url) === PAGE_FOLDER_BARE) return redirectToPageFolder(res);
		// Answers given here carry the CORS headers moleculer-web would have added.
		if (corsRoute && req.headers.origin) writeCorsHeaders(gateway, corsRoute, req, res);
		// A warm read is answered from the cached bytes, without routing or a broker call.
		if (answerCachedRead(cache, req, res, readOptions)) return;
		// Guarded on its own too: the sold-out door may route a request once its body is read. A
		// checkout goes on through the admission gate; a full gate refuses before the body is read.
		const handle = () => routeRequest(gateway, req, res, next);
		const route = () =>
			guarded(logger, req, res, () => admitCheckout(options.admission, req, res, handle));
		if (refuseWhenFull(options.admission, req, res)) return;
		if (refuseKnownSoldOut(soldOutDoor, req, res, route)) return;
		return route();
	};
	return {
		pass: (req, res, next) => guarded(logger, req, res, () => enter(req, res, next))
	};
}

/** A socket handler's throw ends that socket, not the process. */
function guardedSocket(logger: DoorLogger, socket: Duplex, run: () => void): void {
	try {
		run();
	} catch (err) {
		logger.error("The front door failed on a connection:", err);
		socket.destroy();
	}
}
