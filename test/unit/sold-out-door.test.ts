/**
 * Checkouts of a show the gateway knows to be sold out are refused at its front door, before
 * moleculer-web routes them (lib/gateway/sold-out-refusals.ts): the same answers as the checkout action
 * gives, for every kind of body, and anything that is not a plain valid checkout of a sold-out
 * show still goes the whole way.
 */
import { gzipSync } from "node:zlib";
import type { ServiceBroker } from "moleculer";
import { SEED_SHOWS } from "../../services/shows.service";
import {
	apiSchema,
	createShow,
	eventually,
	listShows,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";
import { baseUrlOf, postJson, request } from "./http-client";

const RALLY = SEED_SHOWS[2]._id;
const REFUSED = {
	code: 409,
	type: "NOT_ENOUGH_SEATS",
	message: "cannot reserve 2 seats. Only 0 remaining."
};

describe("api: the front door refuses checkouts of a sold-out show", () => {
	let broker: ServiceBroker;
	let base: string;
	/** Calls of the checkout action: a refusal at the door makes none. */
	const checkoutCalls: string[] = [];

	beforeAll(async () => {
		const api = apiSchema({ http: true, showsCacheTtlMs: 3600000 });
		broker = await startBroker([
			showsSchema(),
			reservationsSchema(),
			{ ...api, hooks: { before: { checkout: () => void checkoutCalls.push("checkout") } } }
		]);
		base = baseUrlOf(broker);
		// The list is warm once somebody has read it.
		expect((await request(`${base}/`)).status).toBe(200);
	});

	afterAll(async () => {
		await broker.stop();
	});

	const form = (body: string, headers: Record<string, string> = {}) =>
		request(`${base}/reserve`, {
			method: "POST",
			headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
			body
		});

	it("a JSON or form checkout of the sold-out rally is 409 with the action's answer, and never reaches the action", async () => {
		checkoutCalls.length = 0;
		const json = await postJson(base, { name: "Late", count: 2, showID: RALLY });
		expect(json).toMatchObject({ status: 409, body: REFUSED });
		expect(json.headers.get("content-type")).toMatch(/^application\/json/);
		expect(json.headers.get("cache-control")).toBe("no-store");
		const upper = await form(`name=Late&count=2&showID=${RALLY.toUpperCase()}`, {
			"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"
		});
		expect(upper).toMatchObject({ status: 409, body: REFUSED });
		expect(checkoutCalls).toEqual([]);
	});

	it("invalid input for the sold-out show gets the same 4xx as anywhere, through the action", async () => {
		const cases: [unknown, number][] = [
			[{ name: "Late", count: 0, showID: RALLY }, 422],
			[{ name: "Late", count: 11, showID: RALLY }, 422],
			[{ name: "La\u0007te", count: 2, showID: RALLY }, 422],
			[{ name: "Late", count: "2", showID: RALLY }, 422],
			['{"name":"Late","count":2,"count":3,"showID":"' + RALLY + '"}', 422],
			['{"name":"Late","count":2,"__proto__":{},"showID":"' + RALLY + '"}', 422],
			["{not json", 422]
		];
		for (const [body, status] of cases) {
			const answer = await postJson(base, body);
			expect({ body, status: answer.status }).toEqual({ body, status });
			expect(answer.body).toMatchObject({ code: status });
		}
	});

	it("a body that is not UTF-8 is 400 at the door as behind it", async () => {
		const bytes = Buffer.concat([
			Buffer.from(`{"name":"`),
			Buffer.from([0xff, 0xfe]),
			Buffer.from(`","count":2,"showID":"${RALLY}"}`)
		]);
		const answer = await request(`${base}/reserve`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: bytes
		});
		expect(answer.status).toBe(400);
		expect(answer.body).toMatchObject({ code: 400 });
	});

	it("a compressed body, a query string or a charset other than UTF-8 goes the whole way and is answered as before", async () => {
		checkoutCalls.length = 0;
		const gzipped = await request(`${base}/reserve`, {
			method: "POST",
			headers: { "Content-Type": "application/json", "Content-Encoding": "gzip" },
			body: gzipSync(JSON.stringify({ name: "Late", count: 2, showID: RALLY }))
		});
		expect(gzipped).toMatchObject({ status: 409, body: REFUSED });
		expect(checkoutCalls).toEqual(["checkout"]);
		const query = await request(`${base}/reserve?x=1`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ name: "Late", count: 2, showID: RALLY })
		});
		expect(query.status).toBe(422);
	});

	it("checkouts of shows with seats pass the door with their body and book; a repeat of a key replays its booking after the show sold out", async () => {
		const show = await createShow(broker, 3);
		await eventually("the list knows the new show", async () =>
			(await listShows(broker)).some(s => s._id === show._id)
		);
		const first = await form(`name=Ann&count=1&showID=${show._id}`);
		expect(first).toMatchObject({ status: 201, body: { name: "Ann", guests: 1 } });
		const keyed = { name: "Bo", count: 2, showID: show._id };
		const booked = await postJson(base, keyed, { "Idempotency-Key": "door-replay-1" });
		expect(booked.status).toBe(201);
		await eventually("the list shows it sold out", async () =>
			(await listShows(broker)).some(s => s._id === show._id && s.available === 0)
		);
		expect(await postJson(base, { ...keyed, name: "Cy" })).toMatchObject({ status: 409 });
		const replay = await postJson(base, keyed, { "Idempotency-Key": "door-replay-1" });
		expect(replay).toMatchObject({ status: 201, body: { _id: booked.body._id } });
		expect(replay.headers.get("idempotent-replayed")).toBe("true");
	});
});
