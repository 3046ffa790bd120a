/**
 * The gateway over real HTTP on a free port: routes, body parsing and how errors become answers.
 */
import { Errors, type Context, type ServiceBroker, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import {
	apiSchema,
	createShow,
	getShow,
	newId,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";
import { baseUrlOf, postJson, request } from "./http-client";

describe("api gateway over HTTP", () => {
	let broker: ServiceBroker;
	let base: string;

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema(),
			reservationsSchema(),
			apiSchema({ http: true })
		]);
		base = baseUrlOf(broker);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("GET / answers 200 with the shows and their available seats", async () => {
		const res = await request(`${base}/`);
		expect(res.status).toBe(200);
		expect(res.body).toContainEqual({
			_id: "5b805a570cee1505a52bc75d",
			name: "Shakespeare Play",
			houseSize: 50,
			reserved: 0,
			available: 50
		});
	});

	it("GET /shows/:id answers 200 for a show and a 404 error body for an unknown one", async () => {
		const show = await createShow(broker, 10);
		expect(await request(`${base}/shows/${show._id}`)).toMatchObject({
			status: 200,
			body: show
		});
		expect(await request(`${base}/shows/0123456789abcdef01234567`)).toMatchObject({
			status: 404,
			body: { name: expect.any(String), message: expect.any(String), code: 404 }
		});
	});

	it("POST /reserve with JSON books and answers 201 with the reservation and its Location", async () => {
		const show = await createShow(broker, 10);
		const res = await postJson(base, { showID: show._id, name: "Ann", count: 2 });
		expect(res.status).toBe(201);
		expect(res.body).toEqual({
			success: true,
			_id: expect.any(String),
			showID: show._id,
			name: "Ann",
			guests: 2,
			status: "confirmed"
		});
		expect(res.headers.get("location")).toBe(`/reservations/${res.body._id}`);
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	});

	it("POST /reserve accepts an HTML form with count as text", async () => {
		const show = await createShow(broker, 10);
		const res = await request(`${base}/reserve`, {
			method: "POST",
			headers: { "Content-Type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({ showID: show._id, name: "Ann", count: "3" }).toString()
		});
		expect(res.status).toBe(201);
		expect(res.body).toMatchObject({ guests: 3, status: "confirmed" });
	});

	it("a repeated POST with the same Idempotency-Key replays the first answer, marked as replayed", async () => {
		const show = await createShow(broker, 10);
		const headers = { "Idempotency-Key": newId("key") };
		const body = { showID: show._id, name: "Ann", count: 2 };
		const first = await postJson(base, body, headers);
		const again = await postJson(base, body, headers);
		expect(first.status).toBe(201);
		expect(again.status).toBe(201);
		expect(again.body).toEqual(first.body);
		expect(again.headers.get("idempotent-replayed")).toBe("true");
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	});

	it("an Idempotency-Key that is not visible ASCII is 422 and books nothing", async () => {
		const show = await createShow(broker, 10);
		const res = await postJson(
			base,
			{ showID: show._id, name: "Ann", count: 2 },
			{ "Idempotency-Key": "has spaces" }
		);
		expect(res).toMatchObject({ status: 422, body: { type: "INVALID_IDEMPOTENCY_KEY" } });
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});

	it("invalid fields are 422 with Moleculer's error shape", async () => {
		const res = await postJson(base, {
			showID: "5b805a570cee1505a52bc75d",
			name: "Ann",
			count: 0
		});
		expect(res).toMatchObject({
			status: 422,
			body: { name: "ValidationError", message: expect.any(String), code: 422 }
		});
	});

	it("not enough seats is 409 with the remaining count in the message", async () => {
		const show = await createShow(broker, 3);
		const res = await postJson(base, { showID: show._id, name: "Ann", count: 7 });
		expect(res).toMatchObject({
			status: 409,
			body: { code: 409, message: "cannot reserve 7 seats. Only 3 remaining." }
		});
	});

	it("malformed JSON is 422, not 400 or 500", async () => {
		const res = await postJson(base, '{"showID": ');
		expect(res).toMatchObject({ status: 422, body: { code: 422, type: "INVALID_JSON" } });
	});

	it("a body over the limit is 413", async () => {
		const res = await postJson(base, {
			showID: "5b805a570cee1505a52bc75d",
			name: "x".repeat(64 * 1024),
			count: 1
		});
		expect(res).toMatchObject({ status: 413, body: { code: 413 } });
	});

	it("a body that is neither JSON nor a form is 415", async () => {
		const res = await request(`${base}/reserve`, {
			method: "POST",
			headers: { "Content-Type": "text/plain" },
			body: "showID=5b805a570cee1505a52bc75d&name=Ann&count=1"
		});
		expect(res).toMatchObject({ status: 415, body: { code: 415 } });
	});

	it("GET and DELETE /reservations/:id read and cancel a reservation; repeated DELETEs answer the same", async () => {
		const show = await createShow(broker, 10);
		const booked = (await postJson(base, { showID: show._id, name: "Ann", count: 4 })).body;
		expect(await request(`${base}/reservations/${booked._id}`)).toMatchObject({
			status: 200,
			body: { _id: booked._id, status: "confirmed", guests: 4 }
		});
		const expected = {
			status: 200,
			body: { canceled: true, _id: booked._id, showID: show._id, name: "Ann", guests: 4 }
		};
		for (let i = 0; i < 3; i++)
			expect(
				await request(`${base}/reservations/${booked._id}`, { method: "DELETE" })
			).toMatchObject(expected);
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});

	it.each([
		["GET", "/nothing-here"],
		["GET", "/api/shows/list"],
		["POST", "/api/reservations/create"],
		["GET", "/~node/health"],
		["GET", "/$node/list"],
		["GET", "/reservations/unknown-reservation-1"]
	])("%s %s answers 404", async (method, path) => {
		const res = await request(`${base}${path}`, { method });
		expect(res.status).toBe(404);
	});

	it("GET /health is 200 ok and every answer carries the security headers", async () => {
		const res = await request(`${base}/health`);
		expect(res).toMatchObject({ status: 200, body: { status: "ok" } });
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
		expect(res.headers.get("cache-control")).toBe("no-store");
	});
});

describe("api gateway over HTTP when services fail", () => {
	let broker: ServiceBroker;
	let base: string;

	/** A `shows` whose store is broken: its error message must never reach a client. */
	const brokenShows: ServiceSchema = {
		name: "shows",
		actions: {
			list() {
				throw new Error("connect ECONNREFUSED mongodb://admin:hunter2@db:27017");
			}
		}
	};

	beforeAll(async () => {
		broker = await startBroker([brokenShows, apiSchema({ http: true })]);
		base = baseUrlOf(broker);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("a checkout that needs a missing service is 503 with Retry-After", async () => {
		const res = await postJson(
			base,
			{ showID: "5b805a570cee1505a52bc75d", name: "Ann", count: 1 },
			{ "Idempotency-Key": newId("key") }
		);
		expect(res).toMatchObject({ status: 503, body: { code: 503 } });
		expect(res.headers.get("retry-after")).toBe("2");
	});

	it("an unexpected error is 500 without its message", async () => {
		const res = await request(`${base}/`);
		expect(res.status).toBe(500);
		expect(res.body).toMatchObject({ code: 500, name: "InternalServerError" });
		expect(JSON.stringify(res.body)).not.toContain("hunter2");
	});

	it("GET /health is 503 with Retry-After when a needed service is missing", async () => {
		const res = await request(`${base}/health`);
		expect(res).toMatchObject({ status: 503, body: { status: "unavailable" } });
		expect(res.headers.get("retry-after")).toBe("2");
	});
});

describe("api gateway over HTTP under the production retry policy", () => {
	let broker: ServiceBroker;
	let base: string;
	let loseConfirmAnswers = 0;

	beforeAll(async () => {
		broker = await startBroker(
			[
				showsSchema({
					hooks: {
						after: {
							// The seats are sold, but the answer never reaches the gateway.
							confirmHold(_ctx: Context, result: unknown) {
								if (loseConfirmAnswers > 0) {
									loseConfirmAnswers--;
									throw new Errors.RequestTimeoutError({
										action: "shows.confirmHold",
										nodeID: "elsewhere"
									});
								}
								return result;
							}
						}
					}
				}),
				reservationsSchema(),
				apiSchema({ http: true })
			],
			{ retryPolicy: brokerConfig.retryPolicy }
		);
		base = baseUrlOf(broker);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("a POST without Idempotency-Key whose seat confirmations keep timing out books the seats at most once", async () => {
		const show = await createShow(broker, 10);
		// Every try of confirmHold (the first and the policy's retries) loses its answer, so the
		// checkout as a whole fails with a retryable timeout.
		loseConfirmAnswers = 1 + (brokerConfig.retryPolicy?.retries ?? 0);
		await postJson(base, { showID: show._id, name: "Ann", count: 2 });
		expect((await getShow(broker, show._id)).reserved).toBe(2);
		const forShow = await broker.call<unknown[], object>("reservations.listByShow", {
			showID: show._id
		});
		expect(forShow).toHaveLength(1);
	});
});
