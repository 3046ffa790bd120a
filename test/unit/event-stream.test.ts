/**
 * lib/gateway/event-stream.ts over a real HTTP server: snapshot first, numbered changes, replay after
 * Last-Event-ID, a snapshot when the id is too old or foreign, heartbeats, the stream caps (per
 * node and per client), resync and shutdown.
 */
import http from "node:http";
import { Errors } from "moleculer";
import type { AddressInfo } from "node:net";
import { createEventStream, type EventStream } from "../../lib/gateway/event-stream";
import { describeError } from "../../lib/gateway/http-errors";
import type { PublicShow } from "../../lib/common/types";
import { openEvents, type SseFrame, type SseReader } from "../support/sse";

const show = (id: string, reserved: number): PublicShow => ({
	_id: id,
	name: `Show ${id}`,
	houseSize: 10,
	reserved,
	available: 10 - reserved
});

let shows: PublicShow[];
let loadFailure: Error | null;
let stream: EventStream;
let server: http.Server;
let baseUrl: string;
const readers: SseReader[] = [];

async function open(headers: Record<string, string> = {}) {
	const reader = await openEvents(baseUrl, headers);
	readers.push(reader);
	return reader;
}

const isEvent = (event: string) => (f: SseFrame) => f.event === event;

beforeEach(async () => {
	shows = [show("a", 0), show("b", 5)];
	loadFailure = null;
	stream = createEventStream({
		maxStreams: 3,
		maxStreamsPerClient: 2,
		// The test's clients all come from 127.0.0.1: a header names which one each is.
		clientOf: req => String(req.headers["x-test-client"] ?? "anonymous"),
		heartbeatMs: 100,
		backlog: 3,
		maxStreamMs: 0,
		loadShows: async () => {
			if (loadFailure) throw loadFailure;
			return shows;
		},
		logger: { warn: () => undefined }
	});
	server = http.createServer((req, res) => {
		stream.open(req, res).catch(err => {
			const { status, body, retryAfter } = describeError(err);
			res.writeHead(status, {
				"Content-Type": "application/json",
				...(retryAfter !== undefined ? { "Retry-After": String(retryAfter) } : {})
			});
			res.end(JSON.stringify(body));
		});
	});
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
	for (const reader of readers.splice(0)) reader.close();
	stream.close();
	server.closeAllConnections();
	await new Promise(resolve => server.close(resolve));
});

describe("event stream", () => {
	it("starts with a snapshot, then numbered seat changes of just _id, reserved, available", async () => {
		const reader = await open();
		expect(reader.status).toBe(200);
		expect(reader.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
		expect(reader.headers.get("cache-control")).toBe("no-store");
		const [snapshot] = await reader.waitFor(isEvent("snapshot"));
		expect(JSON.parse(snapshot.data!)).toEqual({ shows, total: 2 });
		expect(reader.frames[0].retry).toBeGreaterThan(0);

		stream.publish(show("a", 2));
		stream.publish(show("a", 2)); // a confirm after the hold: same counts, no news
		stream.publish(show("b", 6));
		const changes = await reader.waitFor(isEvent("seats"), 2);
		expect(changes.map(f => JSON.parse(f.data!))).toEqual([
			{ _id: "a", reserved: 2, available: 8 },
			{ _id: "b", reserved: 6, available: 4 }
		]);
		const ids = [snapshot, ...changes].map(f => f.id!);
		expect(new Set(ids).size).toBe(3);
		const [boot] = ids[0].split("-");
		expect(ids.map(id => Number(id.split("-")[1]))).toEqual([0, 1, 2]);
		expect(ids.every(id => id.startsWith(`${boot}-`))).toBe(true);
	});

	it("ends a stream after its lifetime; the client resumes after Last-Event-ID and misses nothing", async () => {
		stream.close();
		stream = createEventStream({
			maxStreams: 3,
			maxStreamsPerClient: 3,
			clientOf: () => "one client",
			heartbeatMs: 60000,
			backlog: 10,
			maxStreamMs: 300,
			loadShows: async () => shows,
			logger: { warn: () => undefined }
		});
		const first = await open();
		const [snapshot] = await first.waitFor(isEvent("snapshot"));
		await first.ended;
		stream.publish(show("a", 4));
		const again = await open({ "Last-Event-ID": snapshot.id! });
		const [missed] = await again.waitFor(isEvent("seats"));
		expect(JSON.parse(missed.data!)).toEqual({ _id: "a", reserved: 4, available: 6 });
		expect(again.frames.some(isEvent("snapshot"))).toBe(false);
	});

	it("replays only what a client missed after Last-Event-ID", async () => {
		const first = await open();
		const [snapshot] = await first.waitFor(isEvent("snapshot"));
		stream.publish(show("a", 1));
		const [seen] = await first.waitFor(isEvent("seats"));
		first.close();
		stream.publish(show("a", 2));
		stream.publish(show("b", 7));

		const again = await open({ "Last-Event-ID": seen.id! });
		const missed = await again.waitFor(isEvent("seats"), 2);
		expect(missed.map(f => JSON.parse(f.data!).reserved)).toEqual([2, 7]);
		expect(again.frames.some(isEvent("snapshot"))).toBe(false);

		// Up to date: nothing to replay, and no snapshot either.
		const current = await open({ "Last-Event-ID": missed[1].id! });
		await current.waitFor(f => f.comments.includes("heartbeat"));
		expect(current.frames.filter(f => f.event)).toEqual([]);
		expect(snapshot.id).not.toBe(seen.id);
	});

	it("sends a fresh snapshot for an id too old for the backlog, foreign, or malformed", async () => {
		const first = await open();
		const [snapshot] = await first.waitFor(isEvent("snapshot"));
		for (let reserved = 1; reserved <= 5; reserved++) stream.publish(show("a", reserved));
		await first.waitFor(isEvent("seats"), 5);
		first.close();
		shows = [show("a", 5), show("b", 5)];
		const [boot] = snapshot.id!.split("-");
		for (const lastId of [snapshot.id!, "00000000-3", `${boot}-99`, "garbage", `${boot}-x`]) {
			const reader = await open({ "Last-Event-ID": lastId });
			const [fresh] = await reader.waitFor(isEvent("snapshot"));
			expect({ lastId, data: JSON.parse(fresh.data!) }).toEqual({
				lastId,
				data: { shows, total: 2 }
			});
			expect(fresh.id).toBe(`${boot}-5`);
			reader.close();
		}
	});

	it("keeps idle streams alive with heartbeat comments", async () => {
		const reader = await open();
		await reader.waitFor(f => f.comments.includes("heartbeat"), 2);
	});

	it("refuses streams past the cap with a 503 and Retry-After, and has room again after one ends", async () => {
		const open3 = [
			await open({ "X-Test-Client": "a" }),
			await open({ "X-Test-Client": "b" }),
			await open({ "X-Test-Client": "c" })
		];
		for (const r of open3) await r.waitFor(isEvent("snapshot"));
		expect(stream.size).toBe(3);
		const refused = await fetch(`${baseUrl}/events`);
		expect(refused.status).toBe(503);
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(await refused.json()).toMatchObject({
			name: "ServiceUnavailableError",
			code: 503,
			type: "TOO_MANY_STREAMS"
		});
		open3[0].close();
		await waitUntil(() => stream.size === 2);
		const later = await open();
		expect(later.status).toBe(200);
	});

	it("refuses one client's streams past its own cap with a 503 and Retry-After while others still get in", async () => {
		const greedy = { "X-Test-Client": "greedy" };
		const two = [await open(greedy), await open(greedy)];
		for (const r of two) await r.waitFor(isEvent("snapshot"));
		const refused = await fetch(`${baseUrl}/events`, { headers: greedy });
		expect(refused.status).toBe(503);
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
		expect(await refused.json()).toMatchObject({ code: 503, type: "TOO_MANY_STREAMS" });
		expect(stream.size).toBe(2);
		const other = await open({ "X-Test-Client": "other" });
		expect(other.status).toBe(200);
		two[0].close();
		await waitUntil(() => stream.size === 2);
		const again = await open(greedy);
		expect(again.status).toBe(200);
	});

	it("holds a client to its cap when its streams open all at once", async () => {
		const greedy = { "X-Test-Client": "greedy" };
		const answers = await Promise.all(
			[1, 2, 3, 4, 5].map(() => fetch(`${baseUrl}/events`, { headers: greedy }))
		);
		const statuses = answers.map(a => a.status).sort();
		for (const a of answers) await a.body?.cancel();
		expect(statuses).toEqual([200, 200, 503, 503, 503]);
	});

	it("resync ends every stream and makes old ids unknown, so clients get a snapshot", async () => {
		const reader = await open();
		const [snapshot] = await reader.waitFor(isEvent("snapshot"));
		stream.resync();
		await reader.ended;
		const again = await open({ "Last-Event-ID": snapshot.id! });
		const [fresh] = await again.waitFor(isEvent("snapshot"));
		expect(fresh.id).not.toBe(snapshot.id);
	});

	it("close ends every stream and refuses new ones", async () => {
		const reader = await open();
		await reader.waitFor(isEvent("snapshot"));
		stream.close();
		await reader.ended;
		expect(stream.size).toBe(0);
		expect((await fetch(`${baseUrl}/events`)).status).toBe(503);
	});

	it("answers 503 when the shows cannot be loaded for the snapshot", async () => {
		loadFailure = new Errors.ServiceNotFoundError({ action: "shows.list" });
		const refused = await fetch(`${baseUrl}/events`);
		expect(refused.status).toBe(503);
		expect(((await refused.json()) as { type: string }).type).toBe("SERVICE_UNAVAILABLE");
		expect(stream.size).toBe(0);
	});
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000) {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error("condition not met in time");
		await new Promise(r => setTimeout(r, 20));
	}
}
