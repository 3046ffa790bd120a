/**
 * A new route is one entry of the route table (lib/gateway/route-table.ts) plus its action: the
 * gateway answers it, the front door holds it to its methods and its exact spelling, and
 * /openapi.json lists it. Without the entry the same action is unreachable.
 */
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { routesFromTable } from "../../lib/gateway/gateway-routes";
import { ROUTE_TABLE, type RouteEntry } from "../../lib/gateway/route-table";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "./helpers";
import { baseUrlOf, request } from "./http-client";

const PING: RouteEntry = {
	method: "GET",
	path: "/ping",
	action: "api.ping",
	group: "reads",
	auth: "public",
	openapi: { operationId: "ping", summary: "Whether this gateway answers" }
};

/** The api service with the `ping` action, and the given route table. */
function apiWith(table: readonly RouteEntry[]): ServiceSchema {
	const api = apiSchema({ http: true }) as ServiceSchema & { actions: object };
	return {
		...api,
		settings: { ...api.settings, routeTable: table, routes: routesFromTable(table) },
		actions: { ...api.actions, ping: { params: {}, handler: () => ({ pong: true }) } }
	} as ServiceSchema;
}

async function gatewayOf(table: readonly RouteEntry[]): Promise<[ServiceBroker, string]> {
	const broker = await startBroker([showsSchema(), reservationsSchema(), apiWith(table)]);
	return [broker, baseUrlOf(broker)];
}

describe("a route added to the table", () => {
	let broker: ServiceBroker;
	let base: string;
	beforeAll(async () => {
		[broker, base] = await gatewayOf([...ROUTE_TABLE, PING]);
	});
	afterAll(() => broker.stop());

	it("is answered by its action", async () => {
		const answer = await request(`${base}/ping`);
		expect(answer.status).toBe(200);
		expect(answer.body).toEqual({ pong: true });
	});

	it("answers only its method, and only spelled as the table writes it", async () => {
		const put = await request(`${base}/ping`, { method: "PUT" });
		expect(put.status).toBe(405);
		expect(put.headers.get("allow")).toBe("GET");
		for (const misspelled of ["/PING", "/ping/", "//ping"])
			expect((await request(`${base}${misspelled}`)).status).toBe(404);
	});

	it("is in the OpenAPI document, beside every other route of the table", async () => {
		const document = (await request(`${base}/openapi.json`)).body as {
			paths: Record<string, Record<string, { operationId: string }>>;
		};
		expect(document.paths["/ping"].get.operationId).toBe("ping");
		expect(Object.keys(document.paths).sort()).toEqual(
			[...new Set([...ROUTE_TABLE, PING].map(r => r.path.replace(/:(\w+)/g, "{$1}")))].sort()
		);
	});
});

it("leaves an action that has no entry unreachable", async () => {
	const [broker, base] = await gatewayOf(ROUTE_TABLE);
	try {
		expect((await request(`${base}/ping`)).status).toBe(404);
	} finally {
		await broker.stop();
	}
});
