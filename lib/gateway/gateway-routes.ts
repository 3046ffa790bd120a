/**
 * moleculer-web's routes, made from the route table (lib/gateway/route-table.ts): the reads (no
 * body), the checkout (its body parser, rate limit and Idempotency-Key) and the event stream.
 */
import type { Context } from "moleculer";
import { checkoutRoute, GATEWAY_CALL_OPTIONS } from "./checkout-route";
import { eventsRoute } from "./event-stream";
import { acceptPageQuery, type RequestWithParams } from "./http-guards";
import { aliasesOf, type RouteEntry } from "./route-table";
import type { ReadMeta } from "./show-reads";

function readsRoute(table: readonly RouteEntry[]) {
	return {
		name: "reads",
		path: "",
		mappingPolicy: "restrict",
		aliases: aliasesOf(table, "reads"),
		bodyParsers: false,
		callOptions: GATEWAY_CALL_OPTIONS,
		onBeforeCall(ctx: Context<unknown, ReadMeta>, _route: unknown, req: RequestWithParams) {
			acceptPageQuery(req.$params ?? {});
			ctx.meta.ifNoneMatch = req.headers["if-none-match"];
		}
	};
}

/** The gateway's moleculer-web routes for a route table. */
export function routesFromTable(table: readonly RouteEntry[]) {
	return [
		readsRoute(table),
		{ ...checkoutRoute, aliases: aliasesOf(table, "checkout") },
		eventsRoute
	];
}
