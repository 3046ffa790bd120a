/**
 * Everything the gateway uses of moleculer-web (and of Node's http server) beyond their documented
 * settings, in one place: its routes as it builds them, its request handler, its CORS writer, its
 * rate limiter's store, the way it listens, and the response a socket is busy with. An upgrade that
 * changes any of them fails test/unit/moleculer-web-internals.test.ts, pinned to the version below,
 * instead of breaking the front door in silence.
 */
import cluster from "node:cluster";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import {
	createServer as createNetServer,
	type AddressInfo,
	type Server as NetServer
} from "node:net";
import type { Duplex } from "node:stream";
import ApiGateway from "moleculer-web";

/** The moleculer-web release these internals were read from. */
export const PINNED_MOLECULER_WEB = "0.11.0";

/** moleculer-web's rate limit of a route, as it keeps it (`route.rateLimit`). */
export interface RouteRateLimit {
	limit: number;
	headers: boolean;
	key(req: IncomingMessage): string | undefined;
	store: { inc(key: string): number | Promise<number>; resetTime: number };
}

/** A route as moleculer-web builds it from the settings (`this.routes`, once `created` ran). */
export interface GatewayRoute {
	name?: string;
	callOptions?: Record<string, unknown>;
	cors?: { origin?: unknown } | null;
	rateLimit?: RouteRateLimit;
}

interface GatewayInstance {
	routes: GatewayRoute[];
	writeCorsHeaders(
		route: GatewayRoute,
		req: IncomingMessage,
		res: ServerResponse,
		preflight: boolean
	): void;
}

type HttpHandler = (req: IncomingMessage, res: ServerResponse, next: unknown) => unknown;

const mixinHttpHandler = (ApiGateway as unknown as { methods: { httpHandler: HttpHandler } })
	.methods.httpHandler;

/** moleculer-web's own refusal when a client is over its rate limit (it carries no type). */
export const RateLimitExceeded = ApiGateway.Errors.RateLimitExceeded as unknown as new () => Error;

/** The routes of a gateway service, as moleculer-web built them. */
export function gatewayRoutes(gateway: object): GatewayRoute[] {
	return (gateway as GatewayInstance).routes;
}

/**
 * Has every route call the gateway's actions on this very node. The broker balances calls over all
 * nodes (`preferLocal: false`, for the shows' sharding), so a request could otherwise run its
 * action on another gateway node, and fail when that node leaves (a rolling restart).
 */
export function callActionsOnThisNode(gateway: object, nodeID: string): void {
	for (const route of gatewayRoutes(gateway))
		route.callOptions = { ...route.callOptions, nodeID };
}

/** Routes a request as moleculer-web would had the service not replaced its `httpHandler`. */
export function routeRequest(
	gateway: object,
	req: IncomingMessage,
	res: ServerResponse,
	next: () => void
): unknown {
	return mixinHttpHandler.call(gateway, req, res, next);
}

/**
 * moleculer-web's CORS headers for an answer the door gives itself. It throws for an Origin the
 * route does not allow, so the door drops such an Origin first.
 */
export function writeCorsHeaders(
	gateway: object,
	route: GatewayRoute,
	req: IncomingMessage,
	res: ServerResponse
): void {
	(gateway as GatewayInstance).writeCorsHeaders(route, req, res, false);
}

/**
 * One hit on a route's rate limit, counted and answered in headers as moleculer-web's
 * `aliasHandler` does it (it has no call of its own for this): resolves to whether the client is
 * still within the limit.
 */
export function countRateLimitHit(
	limit: RouteRateLimit,
	key: string,
	res: ServerResponse
): boolean | Promise<boolean> {
	const counted = (hits: number) => {
		const remaining = limit.limit - hits;
		if (limit.headers) {
			res.setHeader("X-Rate-Limit-Limit", limit.limit);
			res.setHeader("X-Rate-Limit-Remaining", Math.max(0, remaining));
			res.setHeader("X-Rate-Limit-Reset", limit.store.resetTime);
		}
		return remaining >= 0;
	};
	const hits = limit.store.inc(key);
	return typeof hits === "number" ? counted(hits) : hits.then(counted);
}

/** How the gateway's server listens (lib/common/config.ts: LISTEN_BACKLOG, LISTEN_SOCKETS). */
export interface ListenOptions {
	/** Connections the kernel holds until they are accepted. */
	backlog: number;
	/** Listening sockets on the one port; more than 1 needs SO_REUSEPORT (Linux). */
	sockets: number;
	/** How long an idle keep-alive connection is kept (Node's default: 5 s). */
	keepAliveTimeoutMs: number;
	/** Told when an extra socket could not listen, or none may (the first one serves on). */
	failed?: (err: Error) => void;
	/** Whether this platform and Node share a port among sockets (for tests; `sharesPort()`). */
	canSharePort?: boolean;
}

/** Platforms on which Node's `reusePort` works (its docs); elsewhere it ends the server. */
const REUSE_PORT_PLATFORMS = new Set(["linux", "freebsd", "sunos", "aix"]);

/**
 * Whether `listen({ reusePort })` shares a port here: Node 22.12 or 23.1 and later (earlier ones
 * ignore the option, and the extra sockets find the port taken), on a platform that supports it
 * (on macOS or Windows the option ends the server).
 */
export function sharesPort(
	platform: string = process.platform,
	nodeVersion: string = process.versions.node
): boolean {
	const [major, minor] = nodeVersion.split(".").map(Number);
	const hasOption = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
	return hasOption && REUSE_PORT_PLATFORMS.has(platform);
}

/**
 * Has the gateway's server listen on `sockets` listening sockets that share its port, each with
 * `backlog` pending connections. libuv accepts one connection per listening socket per turn of the
 * event loop, so a busy gateway with one socket takes a crowd in at a few hundred connections a
 * second while the rest wait in the kernel; every extra socket hands what it accepts to the same
 * http server. moleculer-web calls `server.listen(port, ip, callback)`, which allows neither.
 */
export function listenForCrowds(gateway: object, options: ListenOptions): void {
	const server = (gateway as { server?: Server }).server;
	if (!server) return;
	server.keepAliveTimeout = options.keepAliveTimeoutMs;
	const extra: NetServer[] = [];
	// A worker of `--instances` listens through the cluster primary, which accepts for them all.
	const canSharePort = options.canSharePort ?? sharesPort();
	const reusePort = options.sockets > 1 && !cluster.isWorker && canSharePort;
	if (options.sockets > 1 && !canSharePort)
		options.failed?.(
			new Error(
				`${options.sockets} sockets on one port need SO_REUSEPORT (Linux or FreeBSD, Node ` +
					`22.12 or later), not on ${process.platform} with Node ${process.versions.node}: ` +
					"listening on one"
			)
		);
	const listen = server.listen.bind(server);
	server.listen = ((port: number, host: string | undefined, callback?: () => void) => {
		const { backlog } = options;
		const openExtra = () => {
			const bound = (server.address() as AddressInfo).port;
			for (let i = 1; reusePort && i < options.sockets; i++) {
				const socket = createNetServer(socketOptionsOf(server), connection =>
					server.emit("connection", connection)
				);
				socket.on("error", err => options.failed?.(err));
				socket.listen({ port: bound, host, backlog, reusePort: true });
				extra.push(socket);
			}
			callback?.();
		};
		// A port taken by another process fails here as it would without SO_REUSEPORT: a second
		// gateway started on the same port by mistake must not share its connections.
		if (!reusePort || !port) return listen({ port, host, backlog, reusePort }, openExtra);
		const probe = createNetServer();
		probe.once("error", err => server.emit("error", err));
		probe.listen({ port, host, backlog: 1 }, () =>
			probe.close(() => listen({ port, host, backlog, reusePort }, openExtra))
		);
		return server;
	}) as Server["listen"];
	const close = server.close.bind(server);
	server.close = ((callback?: (err?: Error) => void) => {
		for (const socket of extra.splice(0)) socket.close();
		return close(callback);
	}) as Server["close"];
}

/**
 * The socket options of Node's http server (kept on it by net.Server, undocumented), so that a
 * connection another socket accepts for it behaves as one it accepted itself: Nagle off, half-open
 * allowed. Node's http defaults where one is missing.
 */
function socketOptionsOf(server: Server) {
	const own = server as Server & {
		noDelay?: boolean;
		allowHalfOpen?: boolean;
		keepAlive?: boolean;
	};
	return {
		noDelay: own.noDelay ?? true,
		allowHalfOpen: own.allowHalfOpen ?? true,
		keepAlive: own.keepAlive ?? false
	};
}

/** The response Node's http server is writing on a socket, if any (its private `_httpMessage`). */
export function responseOnSocket(socket: Duplex): ServerResponse | undefined {
	return (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
}
