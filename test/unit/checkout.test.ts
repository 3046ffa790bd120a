import crypto from "node:crypto";
import { Errors, type Context, type ServiceBroker, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import type { BookingAnswer } from "../../services/api.service";
import type { Reservation, ReservationDoc } from "../../lib/common/types";
import {
	apiSchema,
	createShow,
	eventually,
	getShow,
	listShows,
	newId,
	reservationsSchema,
	showsSchema,
	sleep,
	startBroker
} from "./helpers";

const UNKNOWN_SHOW = "0123456789abcdef01234567";

interface CheckoutParams {
	showID: string;
	name: string;
	count: number;
}

function checkout(broker: ServiceBroker, params: object, idempotencyKey?: string) {
	return broker.call<BookingAnswer, object>(
		"api.checkout",
		params,
		idempotencyKey ? { meta: { idempotencyKey } } : {}
	);
}

function sha256(text: string): string {
	return crypto.createHash("sha256").update(text).digest("hex");
}

/** The checkout id that versions before key records derived from an Idempotency-Key. */
function legacyIdFor(key: string): string {
	return sha256(`idempotency-key\n${key}`).slice(0, 32);
}

/** The hash under which reservations records an Idempotency-Key. */
function keyHashFor(key: string): string {
	return sha256(`idempotency-key-record\n${key}`);
}

/** The checkout id the key record of `key` names (claiming it again changes nothing). */
async function checkoutIdFor(broker: ServiceBroker, key: string): Promise<string> {
	const claim = await broker.call<{ checkoutId: string }, object>(
		"reservations.claimIdempotencyKey",
		{
			keyHash: keyHashFor(key),
			checkoutId: "not-this-one",
			fingerprint: "x",
			legacyId: "not-this-one"
		}
	);
	return claim.checkoutId;
}

function reservationsOf(broker: ServiceBroker, showID: string) {
	return broker.call<Reservation[], object>("reservations.listByShow", { showID });
}

function holdState(broker: ServiceBroker, showID: string, holdId: string) {
	return broker.call<{ state: string }, object>("shows.getHold", { showID, holdId });
}

function timeout(action: string) {
	return new Errors.RequestTimeoutError({ action, nodeID: "elsewhere" });
}

describe("api checkout saga", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), reservationsSchema(), apiSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	describe("params validation", () => {
		const showID = "5b805a00297ae6047030f2e0";
		it.each([
			[{ showID, count: 1 }],
			[{ showID, name: "", count: 1 }],
			[{ showID, name: "   ", count: 1 }],
			[{ showID, name: "x".repeat(101), count: 1 }],
			[{ showID, name: "Ann", count: 0 }],
			[{ showID, name: "Ann", count: -2 }],
			[{ showID, name: "Ann", count: 1.5 }],
			[{ showID, name: "Ann", count: "2" }],
			[{ showID, name: "Ann" }],
			[{ showID: "not-a-show", name: "Ann", count: 1 }],
			[{ name: "Ann", count: 1 }]
		])("api.checkout rejects %j with a 422 ValidationError", async params => {
			await expect(checkout(broker, params)).rejects.toMatchObject({
				name: "ValidationError",
				code: 422
			});
		});

		it.each([
			["getShow", { id: 5 }],
			["getShow", { id: "x".repeat(65) }],
			["getReservation", {}],
			["cancelReservation", { id: "x".repeat(129) }]
		])("api.%s rejects %j with a 422 ValidationError", async (action, params) => {
			await expect(broker.call(`api.${action}`, params)).rejects.toMatchObject({
				name: "ValidationError",
				code: 422
			});
		});

		it("more tickets than one order allows is 422 TOO_MANY_TICKETS and holds nothing", async () => {
			const show = await createShow(broker, 50);
			await expect(
				checkout(broker, { showID: show._id, name: "Ann", count: 11 })
			).rejects.toMatchObject({ code: 422, type: "TOO_MANY_TICKETS" });
			expect((await getShow(broker, show._id)).reserved).toBe(0);
		});
	});

	describe("booking", () => {
		it("a checkout books the seats: confirmed reservation, seats sold, hold confirmed", async () => {
			const show = await createShow(broker, 10);
			const answer = await checkout(broker, { showID: show._id, name: "  Ann  ", count: 3 });
			expect(answer).toEqual({
				success: true,
				_id: expect.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
				showID: show._id,
				name: "Ann",
				guests: 3,
				status: "confirmed"
			});
			expect(await broker.call("reservations.get", { id: answer._id })).toMatchObject({
				status: "confirmed",
				guests: 3,
				showID: show._id
			});
			expect(await getShow(broker, show._id)).toMatchObject({ reserved: 3, available: 7 });
			expect(await holdState(broker, show._id, answer._id)).toEqual({ state: "confirmed" });
		});

		it.each([
			["without", undefined],
			["with", "key"]
		])(
			"not enough seats (%s an Idempotency-Key) is 409 NOT_ENOUGH_SEATS with the remaining count, holds nothing, and keeps no reservation of it",
			async (_with, key) => {
				const show = await createShow(broker, 10);
				await checkout(broker, { showID: show._id, name: "Ann", count: 7 });
				const bob = { showID: show._id, name: "Bob", count: 7 };
				await expect(checkout(broker, bob, key && newId(key))).rejects.toMatchObject({
					code: 409,
					type: "NOT_ENOUGH_SEATS",
					message: "cannot reserve 7 seats. Only 3 remaining."
				});
				expect((await getShow(broker, show._id)).reserved).toBe(7);
				const statuses = (await reservationsOf(broker, show._id)).map(r => r.status);
				expect(statuses).toEqual(["confirmed"]);
			}
		);

		it("a key whose checkout was refused before it held a seat books on a retry once seats are free", async () => {
			const show = await createShow(broker, 10);
			const ann = await checkout(broker, { showID: show._id, name: "Ann", count: 7 });
			const key = newId("key");
			const bob = { showID: show._id, name: "Bob", count: 7 };
			await expect(checkout(broker, bob, key)).rejects.toMatchObject({ code: 409 });
			await broker.call("api.cancelReservation", { id: ann._id });
			const booked = await checkout(broker, bob, key);
			expect(booked).toMatchObject({ status: "confirmed", guests: 7 });
			expect(await checkout(broker, bob, key)).toEqual(booked);
			expect((await getShow(broker, show._id)).reserved).toBe(7);
		});

		it("an unknown show is 404 SHOW_NOT_FOUND and keeps no reservation of it", async () => {
			await expect(
				checkout(broker, { showID: UNKNOWN_SHOW, name: "Ann", count: 1 })
			).rejects.toMatchObject({ code: 404, type: "SHOW_NOT_FOUND" });
			expect(await reservationsOf(broker, UNKNOWN_SHOW)).toEqual([]);
		});

		it("without an Idempotency-Key two identical checkouts are two bookings", async () => {
			const show = await createShow(broker, 10);
			const params = { showID: show._id, name: "Ann", count: 2 };
			const [a, b] = [await checkout(broker, params), await checkout(broker, params)];
			expect(a._id).not.toBe(b._id);
			expect((await getShow(broker, show._id)).reserved).toBe(4);
		});

		it("concurrent checkouts for one show never sell more seats than the house", async () => {
			const show = await createShow(broker, 20);
			const results = await Promise.allSettled(
				Array.from({ length: 40 }, (_, i) =>
					checkout(broker, { showID: show._id, name: `Guest ${i}`, count: 1 + (i % 3) })
				)
			);
			const booked = results
				.filter(r => r.status === "fulfilled")
				.reduce(
					(sum, r) => sum + (r as PromiseFulfilledResult<BookingAnswer>).value.guests,
					0
				);
			for (const r of results)
				if (r.status === "rejected")
					expect(r.reason).toMatchObject({ code: 409, type: "NOT_ENOUGH_SEATS" });
			expect(booked).toBeLessThanOrEqual(20);
			expect((await getShow(broker, show._id)).reserved).toBe(booked);
			const confirmed = (await reservationsOf(broker, show._id)).filter(
				r => r.status === "confirmed"
			);
			expect(confirmed.reduce((sum, r) => sum + r.guests, 0)).toBe(booked);
		});
	});

	describe("idempotency", () => {
		it("a retried checkout with the same Idempotency-Key replays the same reservation and books once", async () => {
			const show = await createShow(broker, 10);
			const key = newId("key");
			const params = { showID: show._id, name: "Ann", count: 2 };
			const first = await checkout(broker, params, key);
			const again = await checkout(broker, params, key);
			expect(again).toEqual(first);
			expect((await getShow(broker, show._id)).reserved).toBe(2);
			expect(await reservationsOf(broker, show._id)).toHaveLength(1);
		});

		it("concurrent checkouts with one Idempotency-Key all answer the same reservation and book once", async () => {
			const show = await createShow(broker, 10);
			const key = newId("key");
			const params = { showID: show._id, name: "Ann", count: 3 };
			const answers = await Promise.all(
				Array.from({ length: 8 }, () => checkout(broker, params, key))
			);
			expect(new Set(answers.map(a => a._id)).size).toBe(1);
			for (const answer of answers) expect(answer.status).toBe("confirmed");
			expect((await getShow(broker, show._id)).reserved).toBe(3);
			expect(await reservationsOf(broker, show._id)).toHaveLength(1);
		});

		it.each([
			["another count", { count: 3 }],
			["another name", { name: "Bob" }]
		])(
			"the same Idempotency-Key with %s is 422 IDEMPOTENCY_KEY_REUSED and books nothing more",
			async (_what, change) => {
				const show = await createShow(broker, 10);
				const key = newId("key");
				await checkout(broker, { showID: show._id, name: "Ann", count: 2 }, key);
				await expect(
					checkout(broker, { showID: show._id, name: "Ann", count: 2, ...change }, key)
				).rejects.toMatchObject({ code: 422, type: "IDEMPOTENCY_KEY_REUSED" });
				expect((await getShow(broker, show._id)).reserved).toBe(2);
				expect(await reservationsOf(broker, show._id)).toHaveLength(1);
			}
		);

		it("the reservation id is 128 random bits, never derived from the Idempotency-Key", async () => {
			const show = await createShow(broker, 10);
			const params = { showID: show._id, name: "Ann", count: 1 };
			const first = await checkout(broker, params, "same-key-elsewhere");
			expect(first._id).toMatch(/^[0-9a-f]{32}$/);
			expect(first._id).not.toBe(legacyIdFor("same-key-elsewhere"));
			expect(first._id).not.toContain(
				sha256("idempotency-key\nsame-key-elsewhere").slice(0, 8)
			);
			expect(await checkoutIdFor(broker, "same-key-elsewhere")).toBe(first._id);
		});

		it("a key whose booking an older version made (id derived from the key) replays that booking", async () => {
			const show = await createShow(broker, 10);
			const key = newId("old-key");
			const params = { showID: show._id, name: "Ann", count: 2 };
			const fingerprint = sha256(`${show._id}\nAnn\n2`).slice(0, 32);
			const id = legacyIdFor(key);
			await broker.call("shows.holdSeats", { showID: show._id, holdId: id, count: 2 });
			await broker.call("reservations.create", {
				checkoutId: id,
				showID: show._id,
				name: "Ann",
				guests: 2,
				fingerprint
			});
			await broker.call("shows.confirmHold", { showID: show._id, holdId: id });
			await broker.call("reservations.confirm", { id });
			expect(await checkout(broker, params, key)).toMatchObject({
				_id: id,
				status: "confirmed"
			});
			expect((await getShow(broker, show._id)).reserved).toBe(2);
			expect(await reservationsOf(broker, show._id)).toHaveLength(1);
		});
	});

	describe("reads and cancel through the gateway", () => {
		it("cancelReservation cancels, gives the seats back once, and answers the same however often repeated", async () => {
			const show = await createShow(broker, 10);
			await checkout(broker, { showID: show._id, name: "Keep", count: 1 });
			const booked = await checkout(broker, { showID: show._id, name: "Ann", count: 4 });
			const answers = await Promise.all(
				Array.from({ length: 5 }, () =>
					broker.call("api.cancelReservation", { id: booked._id })
				)
			);
			for (const answer of answers)
				expect(answer).toEqual({
					canceled: true,
					_id: booked._id,
					showID: show._id,
					name: "Ann",
					guests: 4
				});
			expect((await getShow(broker, show._id)).reserved).toBe(1);
		});

		it.each(["getReservation", "cancelReservation"])(
			"api.%s answers 404 for an id that cannot exist, without asking reservations",
			async action => {
				await expect(
					broker.call(`api.${action}`, { id: "../etc/passwd" })
				).rejects.toMatchObject({ code: 404, type: "RESERVATION_NOT_FOUND" });
			}
		);

		it("api.getShow answers 404 for a malformed or unknown id", async () => {
			await expect(broker.call("api.getShow", { id: "nope" })).rejects.toMatchObject({
				code: 404,
				type: "SHOW_NOT_FOUND"
			});
			await expect(broker.call("api.getShow", { id: UNKNOWN_SHOW })).rejects.toMatchObject({
				code: 404,
				type: "SHOW_NOT_FOUND"
			});
		});

		it("api.listShows shows the seats a checkout took", async () => {
			const show = await createShow(broker, 10);
			await checkout(broker, { showID: show._id, name: "Ann", count: 4 });
			const list = await listShows(broker);
			expect(list).toContainEqual({ ...show, reserved: 4, available: 6 });
		});

		it("api.health reports ok when shows and reservations are reachable", async () => {
			expect(await broker.call("api.health", {})).toMatchObject({
				status: "ok",
				services: { shows: true, reservations: true }
			});
		});
	});
});

describe("api show list cache", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema(),
			reservationsSchema(),
			apiSchema({ showsCacheTtlMs: 3600000 })
		]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("a cached show list follows seat changes and new shows through shows.changed events", async () => {
		await broker.call("api.listShows", {});
		const show = await createShow(broker, 10);
		await checkout(broker, { showID: show._id, name: "Ann", count: 4 });
		await eventually("the cached list shows the booking", async () => {
			const list = await listShows(broker);
			return list.some(s => s._id === show._id && s.reserved === 4 && s.available === 6);
		});
	});
});

describe("api checkout compensation when the reservation step fails", () => {
	let broker: ServiceBroker;
	let failWith: Error = new Error("unset");
	const fakeCalls: string[] = [];

	/** Key hash → checkout id, as the fake's key records. */
	const claims = new Map<string, string>();

	/** Stands in for `reservations`: records keys, knows no checkout and refuses to record one. */
	const failingReservations: ServiceSchema = {
		name: "reservations",
		actions: {
			claimIdempotencyKey(
				ctx: Context<{ keyHash: string; checkoutId: string; fingerprint: string }>
			) {
				fakeCalls.push("claimIdempotencyKey");
				const { keyHash, checkoutId, fingerprint } = ctx.params;
				const created = !claims.has(keyHash);
				if (created) claims.set(keyHash, checkoutId);
				return { checkoutId: claims.get(keyHash), fingerprint, created };
			},
			findCheckout() {
				fakeCalls.push("findCheckout");
				return null;
			},
			create() {
				fakeCalls.push("create");
				throw failWith;
			}
		}
	};

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), apiSchema(), failingReservations]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it.each([
		["a client error", () => new Errors.MoleculerClientError("refused", 422, "REFUSED")],
		[
			"a retryable server error",
			() => new Errors.MoleculerRetryableError("store down", 503, "STORE_DOWN")
		],
		[
			"an unavailable service",
			() =>
				new Errors.ServiceNotAvailableError({
					action: "reservations.create",
					nodeID: "elsewhere"
				})
		],
		["a timeout", () => timeout("reservations.create")]
	])("%s from reservations.create releases the hold and propagates", async (_what, makeError) => {
		const show = await createShow(broker, 10);
		await broker.call("shows.holdSeats", {
			showID: show._id,
			holdId: newId("other"),
			count: 3
		});
		failWith = makeError();
		const key = newId("key");
		fakeCalls.length = 0;
		await expect(
			checkout(broker, { showID: show._id, name: "Ann", count: 4 }, key)
		).rejects.toMatchObject({
			name: failWith.name,
			code: (failWith as Errors.MoleculerError).code,
			message: failWith.message
		});
		expect(fakeCalls).toEqual(["claimIdempotencyKey", "create"]);
		expect((await getShow(broker, show._id)).reserved).toBe(3);
		expect(await holdState(broker, show._id, claims.get(keyHashFor(key))!)).toEqual({
			state: "missing"
		});
	});

	it("a failed retry leaves a hold made by an earlier attempt of the same checkout to the reconciler", async () => {
		const show = await createShow(broker, 10);
		const key = newId("key");
		// An earlier attempt claimed the key and held the seats, then died.
		const earlier = newId("checkout");
		claims.set(keyHashFor(key), earlier);
		await broker.call("shows.holdSeats", { showID: show._id, holdId: earlier, count: 2 });
		failWith = new Errors.MoleculerRetryableError("store down", 503, "STORE_DOWN");
		await expect(
			checkout(broker, { showID: show._id, name: "Ann", count: 2 }, key)
		).rejects.toMatchObject({ type: "STORE_DOWN" });
		expect(await holdState(broker, show._id, earlier)).toEqual({ state: "held" });
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	});
});

describe("api checkout without a reservations service", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), apiSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("a missing reservations service fails the checkout with ServiceNotFoundError and releases the hold", async () => {
		const show = await createShow(broker, 10);
		await expect(
			checkout(broker, { showID: show._id, name: "Ann", count: 4 })
		).rejects.toMatchObject({ name: "ServiceNotFoundError" });
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});

	it("with an Idempotency-Key it fails before holding anything", async () => {
		const show = await createShow(broker, 10);
		await expect(
			checkout(broker, { showID: show._id, name: "Ann", count: 4 }, newId("key"))
		).rejects.toMatchObject({ name: "ServiceNotFoundError" });
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});

	it("api.health reports unavailable", async () => {
		expect(await broker.call("api.health", {})).toMatchObject({
			status: "unavailable",
			services: { shows: true, reservations: false }
		});
	});
});

describe("api checkout when a hold expires before it is confirmed", () => {
	const TTL = 1;
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema({ holdTtlSeconds: TTL }),
			// Recording the reservation takes longer than a hold lives.
			reservationsSchema({
				hooks: { before: { create: () => sleep(TTL * 1000 + 150) } }
			}),
			apiSchema()
		]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("the checkout is 409 HOLD_EXPIRED, its reservation failed, its seats back, and a retry is 409 CHECKOUT_FAILED", async () => {
		const show = await createShow(broker, 10);
		const key = newId("key");
		const params = { showID: show._id, name: "Ann", count: 4 };
		await expect(checkout(broker, params, key)).rejects.toMatchObject({
			code: 409,
			type: "HOLD_EXPIRED"
		});
		expect(
			await broker.call<ReservationDoc, object>("reservations.findCheckout", {
				id: await checkoutIdFor(broker, key)
			})
		).toMatchObject({ status: "failed", failReason: "hold lost" });
		expect((await getShow(broker, show._id)).reserved).toBe(0);
		await expect(checkout(broker, params, key)).rejects.toMatchObject({
			code: 409,
			type: "CHECKOUT_FAILED"
		});
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});
});

describe("api checkout when an answer from shows is lost", () => {
	let broker: ServiceBroker;
	/** How many answers of each action to lose: the action runs, its caller sees a timeout. */
	const lose = { holdSeats: 0, confirmHold: 0 };

	function loseAnswer(action: keyof typeof lose) {
		return (_ctx: Context, result: unknown) => {
			if (lose[action] > 0) {
				lose[action]--;
				throw timeout(`shows.${action}`);
			}
			return result;
		};
	}

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema({
				hooks: {
					after: {
						holdSeats: loseAnswer("holdSeats"),
						confirmHold: loseAnswer("confirmHold")
					}
				}
			}),
			reservationsSchema(),
			apiSchema()
		]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	beforeEach(() => {
		lose.holdSeats = 0;
		lose.confirmHold = 0;
	});

	it("a hold whose answer timed out is released, its checkout failed, and the timeout propagates", async () => {
		const show = await createShow(broker, 10);
		lose.holdSeats = 1;
		await expect(
			checkout(broker, { showID: show._id, name: "Ann", count: 4 })
		).rejects.toMatchObject({ name: "RequestTimeoutError" });
		expect((await getShow(broker, show._id)).reserved).toBe(0);
		const statuses = (await reservationsOf(broker, show._id)).map(r => r.status);
		expect(statuses).toEqual(["failed"]);
	});

	it("a lost confirmation leaves the checkout pending, and a retry with the same key completes that same checkout", async () => {
		const show = await createShow(broker, 10);
		const key = newId("key");
		const params: CheckoutParams = { showID: show._id, name: "Ann", count: 4 };
		lose.confirmHold = 1;
		await expect(checkout(broker, params, key)).rejects.toMatchObject({
			name: "RequestTimeoutError"
		});
		const id = await checkoutIdFor(broker, key);
		expect(await broker.call("reservations.get", { id })).toMatchObject({
			status: "pending"
		});
		const answer = await checkout(broker, params, key);
		expect(answer).toMatchObject({ _id: id, status: "confirmed", guests: 4 });
		expect((await getShow(broker, show._id)).reserved).toBe(4);
		expect(await reservationsOf(broker, show._id)).toHaveLength(1);
	});
});

describe("api checkout under the production retry policy", () => {
	let broker: ServiceBroker;
	let loseConfirmAnswers = 0;

	beforeAll(async () => {
		broker = await startBroker(
			[
				showsSchema({
					hooks: {
						after: {
							confirmHold(_ctx: Context, result: unknown) {
								if (loseConfirmAnswers > 0) {
									loseConfirmAnswers--;
									throw timeout("shows.confirmHold");
								}
								return result;
							}
						}
					}
				}),
				reservationsSchema(),
				apiSchema()
			],
			{ retryPolicy: brokerConfig.retryPolicy }
		);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("one lost confirmation answer is retried and the checkout succeeds once", async () => {
		const show = await createShow(broker, 10);
		loseConfirmAnswers = 1;
		const answer = await checkout(broker, { showID: show._id, name: "Ann", count: 2 });
		expect(answer.status).toBe("confirmed");
		expect((await getShow(broker, show._id)).reserved).toBe(2);
		expect(await reservationsOf(broker, show._id)).toHaveLength(1);
	});

	it("with an Idempotency-Key, a checkout whose confirmations keep timing out books the seats once, and the client's retry gets that booking", async () => {
		const show = await createShow(broker, 10);
		const key = newId("key");
		const params = { showID: show._id, name: "Ann", count: 2 };
		loseConfirmAnswers = 1 + (brokerConfig.retryPolicy?.retries ?? 0);
		// Whether the broker's own retries already finish it or not, nothing is booked twice.
		await Promise.allSettled([checkout(broker, params, key)]);
		expect((await getShow(broker, show._id)).reserved).toBe(2);
		await expect(checkout(broker, params, key)).resolves.toMatchObject({
			_id: await checkoutIdFor(broker, key),
			status: "confirmed",
			guests: 2
		});
		expect((await getShow(broker, show._id)).reserved).toBe(2);
		expect(await reservationsOf(broker, show._id)).toHaveLength(1);
	});
});
