/**
 * The gateway's one route table: every public route with its method, path, action and OpenAPI
 * operation. moleculer-web's aliases, the front door's path and method rules, the access log's
 * names and the OpenAPI paths are all made from it, so a new route is one entry here plus its
 * action. Paths are matched exactly as written: case-sensitive, with no doubled or trailing slash
 * and no dot segment (moleculer-web's router is more lenient, so the door refuses the rest first).
 */

export type Method = "GET" | "POST" | "DELETE";

/** The moleculer-web route an entry belongs to: how its body is read and what limits apply. */
type RouteGroup = "reads" | "checkout" | "events" | "page";

export interface RouteEntry {
	method: Method;
	/** As clients write it; `:name` is a path parameter. */
	path: string;
	/** The action it calls; none where a handler answers (the event stream, the page's files). */
	action?: string;
	group: RouteGroup;
	/** Who may call it. Every route of the contract is public; nothing needs credentials. */
	auth: "public";
	/** Its answers carry an ETag, so a conditional GET may be answered 304. */
	conditional?: boolean;
	/** Its OpenAPI operation: lib/gateway/openapi.ts describes the known ids in full. */
	openapi: { operationId: string; summary: string; tags?: string[] };
}

export const ROUTE_TABLE: readonly RouteEntry[] = [
	{
		method: "GET",
		path: "/",
		action: "api.listShows",
		group: "reads",
		auth: "public",
		conditional: true,
		openapi: { operationId: "listShows", summary: "The shows, with seats left" }
	},
	{
		method: "GET",
		path: "/shows/:id",
		action: "api.getShow",
		group: "reads",
		auth: "public",
		conditional: true,
		openapi: { operationId: "getShow", summary: "One show" }
	},
	{
		method: "POST",
		path: "/reserve",
		action: "api.checkout",
		group: "checkout",
		auth: "public",
		openapi: { operationId: "reserve", summary: "Book seats" }
	},
	{
		method: "GET",
		path: "/reservations/:id",
		action: "api.getReservation",
		group: "reads",
		auth: "public",
		openapi: { operationId: "getReservation", summary: "One reservation" }
	},
	{
		method: "DELETE",
		path: "/reservations/:id",
		action: "api.cancelReservation",
		group: "reads",
		auth: "public",
		openapi: { operationId: "cancelReservation", summary: "Cancel a reservation" }
	},
	{
		method: "GET",
		path: "/health",
		action: "api.health",
		group: "reads",
		auth: "public",
		openapi: { operationId: "health", summary: "Whether this node can serve checkouts" }
	},
	{
		method: "GET",
		path: "/openapi.json",
		action: "api.openapi",
		group: "reads",
		auth: "public",
		openapi: { operationId: "openapi", summary: "This document" }
	},
	{
		method: "GET",
		path: "/events",
		group: "events",
		auth: "public",
		openapi: { operationId: "events", summary: "Seat changes as server-sent events" }
	},
	{
		method: "GET",
		path: "/box-office/",
		group: "page",
		auth: "public",
		conditional: true,
		openapi: { operationId: "boxOffice", summary: "The box-office page" }
	},
	{
		method: "GET",
		path: "/box-office/:asset",
		group: "page",
		auth: "public",
		conditional: true,
		openapi: { operationId: "boxOfficeAsset", summary: "The page's scripts and style" }
	}
];

/** What the front door knows of a path: the route's name, its methods, whether it may be a 304. */
export interface PublicRoute {
	/** As the table writes it; the access log names a request by it, never by what was sent. */
	route: string;
	pattern: RegExp;
	methods: Method[];
	conditional: boolean;
}

/** A path segment as a parameter matches it: anything but a slash, a backslash or a dot segment. */
const PARAMETER = String.raw`(?!\.\.?(?:/|$))[^/\\]+`;

/** A path's pattern; a folder (`/box-office/`) also matches without its slash, to be sent on to it. */
function patternOf(path: string): RegExp {
	const parts = path
		.split(/(:\w+)/)
		.map(part =>
			part.startsWith(":") ? PARAMETER : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
		);
	const folder = path.length > 1 && path.endsWith("/");
	return new RegExp(`^${parts.join("")}${folder ? "?" : ""}$`);
}

/** The table by path, for the front door: each path once, with every method it answers. */
export function publicRoutes(table: readonly RouteEntry[]): PublicRoute[] {
	const byPath = new Map<string, PublicRoute>();
	for (const entry of table) {
		const known = byPath.get(entry.path);
		if (known) {
			known.methods.push(entry.method);
			known.conditional ||= Boolean(entry.conditional);
		} else
			byPath.set(entry.path, {
				route: entry.path,
				pattern: patternOf(entry.path),
				methods: [entry.method],
				conditional: Boolean(entry.conditional)
			});
	}
	return [...byPath.values()];
}

/** moleculer-web's aliases of one group (`"GET /shows/:id": "api.getShow"`). */
export function aliasesOf(table: readonly RouteEntry[], group: RouteGroup): Record<string, string> {
	return Object.fromEntries(
		table
			.filter(entry => entry.group === group && entry.action)
			.map(entry => [`${entry.method} ${entry.path}`, entry.action!])
	);
}

/** The route a path names exactly, or null (a 404 whatever the method). */
export function routeOf(routes: readonly PublicRoute[], path: string): PublicRoute | null {
	return routes.find(r => r.pattern.test(path)) ?? null;
}

/** The access log's name for a path: its route, never what the client wrote (it may hold an id). */
export function loggedPath(routes: readonly PublicRoute[], path: string): string {
	return routeOf(routes, path)?.route ?? "(unlisted path)";
}

/** The path of a request's target, without its query. */
export function pathOf(url: string | undefined): string {
	const target = url ?? "";
	const query = target.indexOf("?");
	return query >= 0 ? target.slice(0, query) : target;
}

/** The page's folder without its slash, which the door sends on to the folder itself. */
export const PAGE_FOLDER_BARE = "/box-office";
