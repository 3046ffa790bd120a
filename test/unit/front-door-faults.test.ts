/**
 * Nothing thrown in the gateway's front door may end the process: a throw at any stage, at once or
 * later (a body read, a routed request, an error writer), becomes a JSON error answer and the next
 * request is served. And a node with CORS origins set meets a foreign or its own Origin unharmed.
 */
import type { ServiceBroker } from "moleculer";
import * as httpGuards from "../../lib/gateway/http-guards";
import * as errorAnswers from "../../lib/gateway/error-answers";
import * as showReads from "../../lib/gateway/show-reads";
import * as soldOut from "../../lib/gateway/sold-out-refusals";
import * as showListCache from "../../lib/gateway/show-list-cache";
import { SEED_SHOWS } from "../../services/shows.service";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "./helpers";
import { baseUrlOf, postJson, request } from "./http-client";

const ROCK = SEED_SHOWS[0]._id;
const RALLY = SEED_SHOWS[2]._id;
const GOOD_ORIGIN = "https://good.example";

/** A throw the tests put into the door, not one that the door may answer in its own words. */
function injected(): never {
	throw new Error("injected fault");
}

describe("api: the front door outlives any throw", () => {
	let broker: ServiceBroker;
	let base: string;
	/** Set by a test: the gateway's error writer throws too. */
	let errorWriterThrows = false;

	beforeAll(async () => {
		const api = apiSchema({ http: true, showsCacheTtlMs: 3600000 });
		broker = await startBroker([
			showsSchema(),
			reservationsSchema(),
			{
				...api,
				settings: {
					...api.settings,
					cors: { origin: [GOOD_ORIGIN], methods: ["GET", "POST", "DELETE"] },
					onError(...args: Parameters<typeof errorAnswers.sendErrorAnswer>) {
						if (errorWriterThrows) injected();
						errorAnswers.sendErrorAnswer(...args);
					}
				} as typeof api.settings
			}
		]);
		base = baseUrlOf(broker);
		// Warm the show list, so that reads and sold-out checkouts are answered at the door.
		expect((await request(`${base}/`)).status).toBe(200);
	});

	afterEach(() => {
		jest.restoreAllMocks();
		errorWriterThrows = false;
	});

	afterAll(async () => {
		await broker.stop();
	});

	/** The door's answer to a fault: a JSON 500 that says nothing of it; then the node serves on. */
	async function expectAnsweredAndAlive(answer: Promise<{ status: number; body: any }>) {
		const res = await answer;
		expect(res.status).toBe(500);
		expect(res.body).toMatchObject({ code: 500, type: "INTERNAL_ERROR" });
		expect(JSON.stringify(res.body)).not.toContain("injected");
		jest.restoreAllMocks();
		errorWriterThrows = false;
		expect((await request(`${base}/health`)).status).toBe(200);
	}

	it("a throw in the guards is a 500 JSON answer and the node serves on", async () => {
		jest.spyOn(httpGuards, "guardAndLog").mockImplementationOnce(injected);
		await expectAnsweredAndAlive(request(`${base}/health`));
	});

	it("a throw in the cached reads is a 500 JSON answer and the node serves on", async () => {
		jest.spyOn(showReads, "answerCachedRead").mockImplementationOnce(injected);
		await expectAnsweredAndAlive(request(`${base}/`));
	});

	it("a throw at the sold-out door is a 500 JSON answer and the node serves on", async () => {
		jest.spyOn(soldOut, "refuseKnownSoldOut").mockImplementationOnce(injected);
		await expectAnsweredAndAlive(postJson(base, { showID: RALLY, name: "Ann", count: 1 }));
	});

	it("a throw once the sold-out door has read the body is a 500 JSON answer and the node serves on", async () => {
		jest.spyOn(showListCache, "isKnownSoldOut").mockImplementationOnce(injected);
		await expectAnsweredAndAlive(postJson(base, { showID: RALLY, name: "Ann", count: 1 }));
	});

	it("a throw in the error writer after routing is a 500 JSON answer and the node serves on", async () => {
		errorWriterThrows = true;
		await expectAnsweredAndAlive(request(`${base}/reservations/no-such-reservation-id`));
	});

	it("a foreign Origin gets its answer without CORS headers, and the node serves on", async () => {
		for (const [method, path] of [
			["GET", "/health"],
			["GET", `/shows/${ROCK}`],
			["GET", "/nothing-here"]
		]) {
			const res = await request(`${base}${path}`, {
				method,
				headers: { Origin: "https://evil.example" }
			});
			expect(res.status).toBeLessThan(500);
			expect(res.headers.get("access-control-allow-origin")).toBeNull();
		}
		// moleculer-web matches a listed origin by substring: a prefix of one is still foreign.
		const prefix = await request(`${base}/health`, { headers: { Origin: "https://good" } });
		expect(prefix.headers.get("access-control-allow-origin")).toBeNull();
		const listed = await request(`${base}/health`, { headers: { Origin: GOOD_ORIGIN } });
		expect(listed.status).toBe(200);
		expect(listed.headers.get("access-control-allow-origin")).toBe(GOOD_ORIGIN);
	});

	it("the page's own origin books and reads, though it is not among the CORS origins", async () => {
		const own = base;
		const booked = await postJson(
			base,
			{ showID: ROCK, name: "Own", count: 1 },
			{ Origin: own }
		);
		expect(booked.status).toBe(201);
		const read = await request(`${base}/reservations/${booked.body._id}`, {
			headers: { Origin: own }
		});
		expect(read.status).toBe(200);
		expect(read.body.status).toBe("confirmed");
	});
});
