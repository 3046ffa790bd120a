/**
 * The public routes of shared/CONTRACT.md, each matched exactly as listed: case-sensitive, with no
 * doubled or trailing slash and no dot segment. moleculer-web's router is more lenient (any case, a
 * trailing slash), so the front door refuses every other spelling before routing or logging: the
 * guards, the router and the access log then see one and the same path.
 */

export interface PublicRoute {
	/** The route as the contract writes it; the access log names a request by it. */
	route: string;
	pattern: RegExp;
	methods: string[];
	/** Answers carry an ETag, so that a conditional GET may be answered 304. */
	conditional?: boolean;
}

export const PUBLIC_ROUTES: PublicRoute[] = [
	{ route: "/", pattern: /^\/$/, methods: ["GET"], conditional: true },
	{ route: "/shows/:id", pattern: /^\/shows\/[^/]+$/, methods: ["GET"], conditional: true },
	{ route: "/reserve", pattern: /^\/reserve$/, methods: ["POST"] },
	{ route: "/reservations/:id", pattern: /^\/reservations\/[^/]+$/, methods: ["GET", "DELETE"] },
	{ route: "/health", pattern: /^\/health$/, methods: ["GET"] },
	{ route: "/openapi.json", pattern: /^\/openapi\.json$/, methods: ["GET"] },
	{ route: "/events", pattern: /^\/events$/, methods: ["GET"] },
	// The page's folder and the files directly in it, never `.` or `..` (serve-static's redirects).
	{
		route: "/box-office/",
		pattern: /^\/box-office(\/(?!\.\.?$)[^/\\]*)?$/,
		methods: ["GET"],
		conditional: true
	}
];

/** The folder's name without its slash, which the door sends on to the folder itself. */
export const PAGE_FOLDER_BARE = "/box-office";

/** The path of a request's target, without its query. */
export function pathOf(url: string | undefined): string {
	const target = url ?? "";
	const query = target.indexOf("?");
	return query >= 0 ? target.slice(0, query) : target;
}

/** The route a path names exactly, or null (a 404 whatever the method). */
export function routeOf(path: string): PublicRoute | null {
	return PUBLIC_ROUTES.find(r => r.pattern.test(path)) ?? null;
}

/** The access log's name for a path: its route, never what the client wrote (it may hold an id). */
export function loggedPath(path: string): string {
	return routeOf(path)?.route ?? "(unlisted path)";
}
