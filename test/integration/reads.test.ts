/**
 * Reads as browsers and CDNs use them in an on-sale, over real HTTP on the embedded system:
 * `GET /` and `GET /shows/:id` carry an ETag and a short max-age, answer 304 to a matching
 * If-None-Match, and still show a booking on the very next read.
 */
import { httpCall, jsonBody } from "../support/http";
import { startEmbedded } from "../support/system";

const ROCK = "5b805a00297ae6047030f2e0";
const RALLY = "5b805a790cee1505a52bc75e";

let system: Awaited<ReturnType<typeof startEmbedded>>;
const call = (method: string, url: string, init: RequestInit = {}) =>
	httpCall(system.baseUrl, method, url, init);

beforeAll(async () => {
	system = await startEmbedded();
});

afterAll(async () => {
	await system.node.stop();
});

describe.each([
	["GET /", "/"],
	["GET /shows/:id", `/shows/${ROCK}`]
])("%s", (_name, url) => {
	it("carries a quoted ETag and a Cache-Control max-age of a few seconds", async () => {
		// Twice: the first read may fill the gateway's cache, the second is served from it.
		for (let i = 0; i < 2; i++) {
			const { status, headers } = await call("GET", url);
			expect(status).toBe(200);
			expect(headers.get("etag")).toMatch(/^"[A-Za-z0-9_-]{10,}"$/);
			const maxAge = Number(/max-age=(\d+)/.exec(headers.get("cache-control") ?? "")?.[1]);
			expect(maxAge).toBeGreaterThanOrEqual(0);
			expect(maxAge).toBeLessThanOrEqual(5);
			expect(headers.get("content-type")).toMatch(/^application\/json/);
		}
	});

	it("answers 304 with no body to If-None-Match of the current ETag, 200 to an old one", async () => {
		const first = await call("GET", url);
		const etag = first.headers.get("etag")!;
		const again = await fetch(`${system.baseUrl}${url}`, {
			headers: { "if-none-match": etag }
		});
		expect(again.status).toBe(304);
		expect(await again.text()).toBe("");
		expect(again.headers.get("etag")).toBe(etag);
		const stale = await call("GET", url, { headers: { "if-none-match": '"not-it"' } });
		expect(stale.status).toBe(200);
		expect(stale.body).toEqual(first.body);
	});

	it("shows a booking on the very next read, under a new ETag", async () => {
		const before = await call("GET", url);
		const seatsOf = (body: any) =>
			(Array.isArray(body) ? body.find((s: any) => s._id === ROCK) : body).reserved;
		const booked = await call(
			"POST",
			"/reserve",
			jsonBody({ name: "Eve", count: 2, showID: ROCK })
		);
		expect(booked.status).toBe(201);
		const after = await fetch(`${system.baseUrl}${url}`, {
			headers: { "if-none-match": before.headers.get("etag")! }
		});
		expect(after.status).toBe(200);
		expect(after.headers.get("etag")).not.toBe(before.headers.get("etag"));
		expect(seatsOf(await after.json())).toBe(seatsOf(before.body) + 2);
	});
});

it("an unknown show is 404 and not cacheable", async () => {
	const { status, headers } = await call("GET", "/shows/0123456789abcdef01234567");
	expect(status).toBe(404);
	expect(headers.get("cache-control")).toBe("no-store");
	expect(headers.get("etag")).toBeNull();
});

it("every other answer stays no-store", async () => {
	const booked = await call(
		"POST",
		"/reserve",
		jsonBody({ name: "Ann", count: 1, showID: ROCK })
	);
	expect(booked.headers.get("cache-control")).toBe("no-store");
	const read = await call("GET", `/reservations/${booked.body._id}`);
	expect(read.headers.get("cache-control")).toBe("no-store");
	expect((await call("GET", "/health")).headers.get("cache-control")).toBe("no-store");
});

it("a sold-out show's checkout is 409 with the seats it asked for", async () => {
	await call("GET", "/");
	const { status, body } = await call(
		"POST",
		"/reserve",
		jsonBody({ name: "Late", count: 3, showID: RALLY })
	);
	expect(status).toBe(409);
	expect(body).toMatchObject({
		type: "NOT_ENOUGH_SEATS",
		message: "cannot reserve 3 seats. Only 0 remaining."
	});
});
