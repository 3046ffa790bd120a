/**
 * The whole system as `npm start` runs it (one process, embedded NeDB stores), driven over real
 * HTTP: every row of the contract, nothing else reachable, concurrency, and a restart.
 */
import fs from "node:fs";
import path from "node:path";
import { httpCall, jsonBody } from "../support/http";
import { startEmbedded, systemNode, waitForHealthy } from "../support/system";

const ROCK = "5b805a00297ae6047030f2e0";
const PLAY = "5b805a570cee1505a52bc75d";
const RALLY = "5b805a790cee1505a52bc75e";

let system: Awaited<ReturnType<typeof startEmbedded>>;

const call = (method: string, url: string, init: RequestInit = {}) =>
	httpCall(system.baseUrl, method, url, init);

async function reserve(body: Record<string, unknown>, headers: Record<string, string> = {}) {
	return call("POST", "/reserve", jsonBody(body, headers));
}

beforeAll(async () => {
	system = await startEmbedded({ MAX_TICKETS_PER_ORDER: "10" });
});

afterAll(async () => {
	await system.node.stop();
});

describe("reads", () => {
	it("GET / lists the three seeded shows with their seats", async () => {
		const { status, body } = await call("GET", "/");
		expect(status).toBe(200);
		expect(body).toEqual([
			{ _id: ROCK, name: "Rock Concert", houseSize: 100, reserved: 0, available: 100 },
			{ _id: PLAY, name: "Shakespeare Play", houseSize: 50, reserved: 0, available: 50 },
			{ _id: RALLY, name: "Monster Truck Rally", houseSize: 500, reserved: 500, available: 0 }
		]);
	});

	it("GET /shows/:id answers one show, and 404 for an unknown or malformed id", async () => {
		expect((await call("GET", `/shows/${PLAY}`)).body).toMatchObject({
			_id: PLAY,
			houseSize: 50
		});
		for (const id of ["5b805a570cee1505a52bc700", "nope"]) {
			const { status, body } = await call("GET", `/shows/${id}`);
			expect(status).toBe(404);
			expect(body).toMatchObject({ name: expect.any(String), code: 404 });
		}
	});
});

describe("checkout", () => {
	it("books from a JSON body and from an HTML form, as the seed's curl did", async () => {
		const fromJson = await reserve({ name: "Ann", count: 2, showID: ROCK });
		expect(fromJson.status).toBe(201);
		expect(fromJson.body).toEqual({
			success: true,
			_id: expect.any(String),
			showID: ROCK,
			name: "Ann",
			guests: 2,
			status: "confirmed"
		});
		expect(fromJson.headers.get("location")).toBe(`/reservations/${fromJson.body._id}`);

		const fromForm = await call("POST", "/reserve", {
			body: `name=Eve&count=5&showID=${ROCK}`,
			headers: { "content-type": "application/x-www-form-urlencoded" }
		});
		expect(fromForm.status).toBe(201);
		expect(fromForm.body).toMatchObject({ name: "Eve", guests: 5, status: "confirmed" });

		const show = await call("GET", `/shows/${ROCK}`);
		expect(show.body).toMatchObject({ reserved: 7, available: 93 });
		const list = await call("GET", "/");
		expect(list.body[0]).toMatchObject({ _id: ROCK, reserved: 7, available: 93 });
	});

	it("looks a reservation up, and cancels it once however often DELETE is repeated", async () => {
		const booked = await reserve({ name: "Cat", count: 3, showID: PLAY });
		const id = booked.body._id;
		expect((await call("GET", `/reservations/${id}`)).body).toMatchObject({
			_id: id,
			showID: PLAY,
			name: "Cat",
			guests: 3,
			status: "confirmed"
		});
		const before = (await call("GET", `/shows/${PLAY}`)).body.reserved;

		const cancels = await Promise.all(
			[1, 2, 3].map(() => call("DELETE", `/reservations/${id}`))
		);
		cancels.push(await call("DELETE", `/reservations/${id}`));
		for (const cancel of cancels) {
			expect(cancel.status).toBe(200);
			expect(cancel.body).toEqual({
				canceled: true,
				_id: id,
				showID: PLAY,
				name: "Cat",
				guests: 3
			});
		}
		expect((await call("GET", `/shows/${PLAY}`)).body.reserved).toBe(before - 3);
		expect((await call("GET", `/reservations/${id}`)).body.status).toBe("canceled");
	});

	it("answers 404 for an unknown reservation, to GET and DELETE", async () => {
		for (const method of ["GET", "DELETE"]) {
			const { status, body } = await call(
				method,
				"/reservations/0123456789abcdef0123456789abcdef"
			);
			expect(status).toBe(404);
			expect(body).toMatchObject({ code: 404, type: "RESERVATION_NOT_FOUND" });
		}
	});

	it("replays the first answer for a repeated Idempotency-Key, and books once", async () => {
		const key = { "Idempotency-Key": "order-7f3a" };
		const before = (await call("GET", `/shows/${PLAY}`)).body.reserved;
		const first = await reserve({ name: "Dan", count: 2, showID: PLAY }, key);
		const again = await Promise.all(
			[1, 2, 3].map(() => reserve({ name: "Dan", count: 2, showID: PLAY }, key))
		);
		expect(first.status).toBe(201);
		for (const answer of again) {
			expect(answer.status).toBe(201);
			expect(answer.body).toEqual(first.body);
		}
		expect((await call("GET", `/shows/${PLAY}`)).body.reserved).toBe(before + 2);

		const reused = await reserve({ name: "Dan", count: 3, showID: PLAY }, key);
		expect(reused.status).toBe(422);
		expect(reused.body.type).toBe("IDEMPOTENCY_KEY_REUSED");
	});
});

describe("refusals change nothing", () => {
	const invalid: [string, Record<string, unknown>][] = [
		["no name", { count: 1, showID: ROCK }],
		["empty name", { name: " ", count: 1, showID: ROCK }],
		["no count", { name: "A", showID: ROCK }],
		["count as text", { name: "A", count: "two", showID: ROCK }],
		["fractional count", { name: "A", count: 1.5, showID: ROCK }],
		["zero count", { name: "A", count: 0, showID: ROCK }],
		["negative count", { name: "A", count: -3, showID: ROCK }],
		["boolean count", { name: "A", count: true, showID: ROCK }],
		["count over the per-order limit", { name: "A", count: 11, showID: ROCK }],
		["malformed showID", { name: "A", count: 1, showID: "123" }],
		["name not a string", { name: { $gt: "" }, count: 1, showID: ROCK }]
	];

	it.each(invalid)("%s: 422 with the error shape", async (_label, body) => {
		const before = await call("GET", "/");
		const { status, body: error } = await reserve(body);
		expect(status).toBe(422);
		expect(error).toEqual(
			expect.objectContaining({
				name: expect.any(String),
				message: expect.any(String),
				code: 422
			})
		);
		expect((await call("GET", "/")).body).toEqual(before.body);
	});

	it("unknown show: 404; sold out: 409 with the seats remaining", async () => {
		const unknown = await reserve({ name: "A", count: 1, showID: "5b805a790cee1505a52bc7ff" });
		expect(unknown.status).toBe(404);
		const soldOut = await reserve({ name: "A", count: 7, showID: RALLY });
		expect(soldOut.status).toBe(409);
		expect(soldOut.body).toMatchObject({
			code: 409,
			message: "cannot reserve 7 seats. Only 0 remaining."
		});
	});

	it("malformed JSON: 422; unsupported content type: 415; body too large: 413", async () => {
		const malformed = await call("POST", "/reserve", {
			body: "{name:",
			headers: { "content-type": "application/json" }
		});
		expect(malformed.status).toBe(422);
		const text = await call("POST", "/reserve", {
			body: "name=A",
			headers: { "content-type": "text/plain" }
		});
		expect(text.status).toBe(415);
		expect(text.body.code).toBe(415);
		const big = await reserve({ name: "A".repeat(64 * 1024), count: 1, showID: ROCK });
		expect(big.status).toBe(413);
		expect(big.body.code).toBe(413);
	});

	it("a bad Idempotency-Key is refused with 422", async () => {
		const { status } = await reserve(
			{ name: "A", count: 1, showID: ROCK },
			{ "Idempotency-Key": "x".repeat(300) }
		);
		expect(status).toBe(422);
	});
});

describe("nothing else is reachable", () => {
	const closed: [string, string][] = [
		["PUT", "/hold-seats"],
		["GET", "/~node/actions"],
		["GET", "/$node/list"],
		["GET", "/api/shows"],
		["GET", "/api/shows/list"],
		["GET", "/shows"],
		["POST", "/shows"],
		["GET", "/reservations"],
		["POST", "/reservations"],
		["GET", "/shows.holdSeats"],
		["POST", "/shows/holdSeats"],
		["POST", "/reservations/create"],
		["GET", "/api/reservations"],
		["PUT", `/shows/${ROCK}`],
		["DELETE", `/shows/${ROCK}`]
	];

	// A path the gateway serves with other methods is 405 with Allow; any other path 404.
	it.each(closed)("%s %s answers 404 or 405", async (method, url) => {
		const { status, body, headers } = await call(method, url);
		const served = /^\/(shows|reservations)\/[^/]+$/.test(url);
		expect(status).toBe(served ? 405 : 404);
		expect(body).toMatchObject({ code: status });
		if (served) expect(headers.get("allow")).toMatch(/^GET/);
	});

	it("every answer carries the security headers", async () => {
		const { headers } = await call("GET", "/");
		expect(headers.get("x-content-type-options")).toBe("nosniff");
		expect(headers.get("x-frame-options")).toBe("DENY");
		expect(headers.get("x-powered-by")).toBeNull();
		expect(headers.get("server")).toBeNull();
	});
});

describe("under concurrent load", () => {
	it("sells exactly the free seats to many more concurrent checkouts than seats", async () => {
		const { body: show } = await call("GET", `/shows/${PLAY}`);
		const free = show.available as number;
		expect(free).toBeGreaterThan(0);
		const attempts = free * 3 + 10;
		const answers = await Promise.all(
			Array.from({ length: attempts }, (_, i) =>
				reserve({ name: `Fan ${i}`, count: 1, showID: PLAY })
			)
		);
		const statuses = answers.map(a => a.status);
		expect(statuses.filter(s => s === 201)).toHaveLength(free);
		expect(statuses.filter(s => s === 409)).toHaveLength(attempts - free);
		const after = (await call("GET", `/shows/${PLAY}`)).body;
		expect(after).toMatchObject({ reserved: 50, available: 0 });
		const ids = new Set(answers.filter(a => a.status === 201).map(a => a.body._id));
		expect(ids.size).toBe(free);
	});
});

describe("the embedded store", () => {
	it("keeps every show and reservation across a restart", async () => {
		const booked = await reserve({ name: "Kept", count: 1, showID: ROCK });
		const shows = (await call("GET", "/")).body;
		await system.node.stop();
		await system.node.start();
		await waitForHealthy(system.baseUrl, system.node);
		expect((await call("GET", "/")).body).toEqual(shows);
		expect((await call("GET", `/reservations/${booked.body._id}`)).body).toMatchObject({
			name: "Kept",
			status: "confirmed"
		});
		expect(fs.existsSync(path.join(system.dataDir, "shows"))).toBe(true);
		expect(fs.existsSync(path.join(system.dataDir, "reservations"))).toBe(true);
	});

	it("refuses a second process on the same embedded store, with a clear message", async () => {
		const second = systemNode(
			{ services: "shows,reservations,api" },
			{ PORT: "0", DATA_DIR: system.dataDir }
		);
		await second.start();
		const code = await second.exited();
		expect(code).not.toBe(0);
		expect(second.output()).toMatch(/already used by process \d+/);
	});

	it("refuses --instances on an embedded store, with a clear message", async () => {
		const many = systemNode(
			{ services: "shows,reservations,api", instances: 2 },
			{ PORT: "0", DATA_DIR: system.dataDir }
		);
		await many.start();
		expect(await many.exited()).not.toBe(0);
		expect(many.output()).toMatch(/needs MONGO_URI/);
	});
});
