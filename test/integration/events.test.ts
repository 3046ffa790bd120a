/**
 * GET /events over real HTTP on the real system: two gateway processes and a shows+reservations
 * process over a real nats-server. Each gateway streams the `shows.changed` broadcast; ids let a
 * client resume; heartbeats; a cap per node answered with 503; streams end cleanly on shutdown.
 */
import { freePort } from "../../scripts/servers";
import { bookThroughGateway, httpCall } from "../support/http";
import { operatorNode } from "../support/probe";
import { openEvents, type SseFrame, type SseReader } from "../support/sse";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const ROCK = "5b805a00297ae6047030f2e0";
const PLAY = "5b805a570cee1505a52bc75d";
const MAX_STREAMS = 4;

let cluster: Cluster;
let gatewayB: NodeHandle;
let baseB: string;
const readers: SseReader[] = [];

const isEvent = (event: string) => (f: SseFrame) => f.event === event;
const seatsOf = (id: string) => (f: SseFrame) =>
	f.event === "seats" && JSON.parse(f.data!)._id === id;

async function open(baseUrl: string, headers: Record<string, string> = {}) {
	const reader = await openEvents(baseUrl, headers);
	readers.push(reader);
	return reader;
}

/** Books through the gateway, as another customer. */
const book = (showID: string, count: number) =>
	bookThroughGateway(cluster.baseUrl, showID, count, "Stream Watcher");

beforeAll(async () => {
	cluster = await startCluster({
		mongo: false,
		env: {
			EVENTS_MAX_STREAMS: String(MAX_STREAMS),
			// Every stream here comes from one address: the per-client cap stays out of the way.
			EVENTS_MAX_STREAMS_PER_CLIENT: String(MAX_STREAMS * 2),
			EVENTS_HEARTBEAT_MS: "300"
		}
	});
	await cluster.add({ services: "shows,reservations", env: { NODE_ID: "store" } });
	await cluster.add({ services: "api", env: { NODE_ID: "gateway-a" } });
	const portB = await freePort();
	baseB = `http://127.0.0.1:${portB}`;
	gatewayB = await cluster.add({
		services: "api",
		env: { PORT: String(portB), NODE_ID: "gateway-b" }
	});
	await waitForHealthy(cluster.baseUrl, cluster.nodes[1]);
	await waitForHealthy(baseB, gatewayB);
	// A gateway is healthy once it knows the store; the store broadcasts seat changes only to
	// the nodes it knows, so wait until it has heard of both gateways too.
	const operator = await operatorNode(cluster);
	try {
		for (
			let known: string[] = [];
			!["gateway-a", "gateway-b"].every(id => known.includes(id));
		) {
			const nodes = await operator.call<{ id: string; available: boolean }[], object>(
				"$node.list",
				{ onlyAvailable: true },
				{ nodeID: "store" }
			);
			known = nodes.map(n => n.id);
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	} finally {
		await operator.stop();
	}
}, 120000);

afterEach(() => {
	for (const reader of readers.splice(0)) reader.close();
});

afterAll(async () => {
	await cluster?.stop();
});

describe("GET /events", () => {
	it("is a text/event-stream that starts with a snapshot of the shows", async () => {
		const reader = await open(cluster.baseUrl);
		expect(reader.status).toBe(200);
		expect(reader.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
		expect(reader.headers.get("cache-control")).toBe("no-store");
		const [snapshot] = await reader.waitFor(isEvent("snapshot"));
		expect(snapshot.id).toMatch(/^[0-9a-f]{8}-\d+$/);
		const data = JSON.parse(snapshot.data!);
		expect(data.total).toBe(3);
		expect(data.shows.map((s: { _id: string }) => s._id)).toEqual([
			ROCK,
			PLAY,
			"5b805a790cee1505a52bc75e"
		]);
		const shows = await httpCall(cluster.baseUrl, "GET", "/");
		expect(data.shows).toEqual(shows.body);
	});

	it("streams each seat change with a new id, on every gateway node, heartbeat in between", async () => {
		const onA = await open(cluster.baseUrl);
		const onB = await open(baseB);
		await onA.waitFor(isEvent("snapshot"));
		await onB.waitFor(isEvent("snapshot"));
		const before = (await httpCall(cluster.baseUrl, "GET", `/shows/${ROCK}`)).body;
		const id = await book(ROCK, 3);
		const expected = {
			_id: ROCK,
			reserved: before.reserved + 3,
			available: before.available - 3
		};
		for (const reader of [onA, onB]) {
			const frames = await reader.waitFor(
				f => seatsOf(ROCK)(f) && JSON.parse(f.data!).reserved === expected.reserved
			);
			expect(JSON.parse(frames[0].data!)).toEqual(expected);
		}
		await httpCall(cluster.baseUrl, "DELETE", `/reservations/${id}`);
		const back = await onA.waitFor(
			f => seatsOf(ROCK)(f) && JSON.parse(f.data!).reserved === before.reserved
		);
		expect(JSON.parse(back[0].data!).available).toBe(before.available);
		const ids = onA.frames.filter(f => f.id).map(f => Number(f.id!.split("-")[1]));
		expect(ids).toEqual([...ids].sort((a, b) => a - b));
		expect(new Set(ids).size).toBe(ids.length);
		await onA.waitFor(f => f.comments.includes("heartbeat"), 2);
	});

	it("after Last-Event-ID replays what was missed; a foreign or stale id gets a snapshot", async () => {
		const first = await open(cluster.baseUrl);
		const [snapshot] = await first.waitFor(isEvent("snapshot"));
		first.close();
		const id = await book(PLAY, 2);
		await httpCall(cluster.baseUrl, "DELETE", `/reservations/${id}`);

		const resumed = await open(cluster.baseUrl, { "Last-Event-ID": snapshot.id! });
		const missed = await resumed.waitFor(seatsOf(PLAY), 2);
		const reserved = missed.map(f => JSON.parse(f.data!).reserved);
		expect(reserved[0] - reserved[reserved.length - 1]).toBe(2);
		await resumed.waitFor(f => f.comments.includes("heartbeat"));
		expect(resumed.frames.some(isEvent("snapshot"))).toBe(false);

		// Node B numbers its own events: A's id means nothing there.
		const elsewhere = await open(baseB, { "Last-Event-ID": snapshot.id! });
		await elsewhere.waitFor(isEvent("snapshot"));
		const garbage = await open(cluster.baseUrl, { "Last-Event-ID": "not-an-id" });
		await garbage.waitFor(isEvent("snapshot"));
	});

	it("refuses streams past EVENTS_MAX_STREAMS with a JSON 503 and Retry-After", async () => {
		const open4 = [];
		for (let i = 0; i < MAX_STREAMS; i++) open4.push(await open(cluster.baseUrl));
		for (const reader of open4) await reader.waitFor(isEvent("snapshot"));
		const refused = await fetch(`${cluster.baseUrl}/events`);
		expect(refused.status).toBe(503);
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(refused.headers.get("content-type")).toMatch(/^application\/json/);
		expect(await refused.json()).toMatchObject({
			name: "ServiceUnavailableError",
			code: 503,
			type: "TOO_MANY_STREAMS"
		});
		// The cap is per node: B still has room; and A has room again once one stream ends.
		expect((await open(baseB)).status).toBe(200);
		open4[0].close();
		const deadline = Date.now() + 5000;
		let again = await fetch(`${cluster.baseUrl}/events`, { method: "GET" });
		while (again.status === 503 && Date.now() < deadline) {
			await new Promise(r => setTimeout(r, 100));
			again = await fetch(`${cluster.baseUrl}/events`);
		}
		expect(again.status).toBe(200);
		await again.body?.cancel();
	});

	it("ends open streams cleanly when a gateway shuts down", async () => {
		const reader = await open(baseB);
		await reader.waitFor(isEvent("snapshot"));
		const started = Date.now();
		await gatewayB.stop("SIGTERM");
		await reader.ended;
		expect(await gatewayB.exited()).toBe(0);
		// Not held open until some timeout by the stream.
		expect(Date.now() - started).toBeLessThan(10000);
	});
});
