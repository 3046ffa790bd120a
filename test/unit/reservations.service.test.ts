import { Errors, type ServiceBroker, type ServiceSchema } from "moleculer";
import type { Reservation, ReservationDoc } from "../../lib/common/types";
import {
	createShow,
	eventually,
	getShow,
	newId,
	outliveHold,
	reservationsSchema,
	settle,
	showsSchema,
	startBroker
} from "./helpers";

const SOME_SHOW = "5b805a570cee1505a52bc75d";

interface Reconciler {
	reconcileCheckouts(): Promise<void>;
}

function reconciler(broker: ServiceBroker): Reconciler {
	return broker.getLocalService("reservations") as unknown as Reconciler;
}

function createReservation(
	broker: ServiceBroker,
	checkoutId: string,
	fields: Partial<{ showID: string; name: string; guests: number; fingerprint: string }> = {}
) {
	return broker.call<ReservationDoc & { created: boolean }, object>("reservations.create", {
		checkoutId,
		showID: SOME_SHOW,
		name: "Ann",
		guests: 2,
		fingerprint: `fp-${checkoutId}`,
		...fields
	});
}

function getReservation(broker: ServiceBroker, id: string) {
	return broker.call<Reservation, object>("reservations.get", { id });
}

function findCheckout(broker: ServiceBroker, id: string) {
	return broker.call<ReservationDoc | null, object>("reservations.findCheckout", { id });
}

/** Runs a checkout by hand, as the gateway would: hold → pending → confirm hold → confirm. */
async function book(broker: ServiceBroker, showID: string, guests: number): Promise<string> {
	const id = newId("checkout");
	await broker.call("shows.holdSeats", { showID, holdId: id, count: guests });
	await createReservation(broker, id, { showID, guests });
	await broker.call("shows.confirmHold", { showID, holdId: id });
	await broker.call("reservations.confirm", { id });
	return id;
}

/** Records the events the reservations service emits. */
function eventRecorder() {
	const seen: Array<{ event: string; id: string }> = [];
	const schema: ServiceSchema = {
		name: "recorder",
		events: {
			"reservations.confirmed"(ctx) {
				seen.push({ event: "confirmed", id: (ctx.params as Reservation)._id });
			},
			"reservations.canceled"(ctx) {
				seen.push({ event: "canceled", id: (ctx.params as Reservation)._id });
			}
		}
	};
	return { seen, schema };
}

describe("reservations service", () => {
	let broker: ServiceBroker;
	const recorder = eventRecorder();

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), reservationsSchema(), recorder.schema]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	describe("params validation", () => {
		const valid = {
			checkoutId: "checkout-valid-1",
			showID: SOME_SHOW,
			name: "Ann",
			guests: 2,
			fingerprint: "fp"
		};
		it.each([
			["create", { ...valid, checkoutId: "bad id!" }],
			["create", { ...valid, checkoutId: "short" }],
			["create", { ...valid, showID: "123" }],
			["create", { ...valid, name: "" }],
			["create", { ...valid, name: "x".repeat(101) }],
			["create", { ...valid, guests: 0 }],
			["create", { ...valid, guests: 1.5 }],
			["create", { ...valid, fingerprint: "" }],
			["create", { ...valid, fingerprint: undefined }],
			["findCheckout", { id: "x" }],
			["get", {}],
			["get", { id: 12345678 }],
			["confirm", { id: "no" }],
			["fail", { id: "checkout-valid-1" }],
			["fail", { id: "checkout-valid-1", reason: "x".repeat(201) }],
			["cancel", { id: "a/b/c/d/e/f" }],
			["listByShow", { showID: "abc" }]
		])("reservations.%s rejects %j with a 422 ValidationError", async (action, params) => {
			await expect(broker.call(`reservations.${action}`, params)).rejects.toMatchObject({
				name: "ValidationError",
				code: 422
			});
		});

		it("a rejected create records nothing", async () => {
			await expect(
				createReservation(broker, "checkout-inval-1", { guests: 0 })
			).rejects.toMatchObject({ code: 422 });
			expect(await findCheckout(broker, "checkout-inval-1")).toBeNull();
		});
	});

	describe("create and reads", () => {
		it("create records a pending reservation keyed by the checkout id", async () => {
			const id = newId("checkout");
			const created = await createReservation(broker, id, { name: "Bea", guests: 3 });
			expect(created).toMatchObject({
				_id: id,
				showID: SOME_SHOW,
				name: "Bea",
				guests: 3,
				status: "pending",
				created: true
			});
			expect(await getReservation(broker, id)).toEqual({
				_id: id,
				showID: SOME_SHOW,
				name: "Bea",
				guests: 3,
				status: "pending",
				createdAt: created.createdAt,
				updatedAt: created.updatedAt
			});
		});

		it("create is idempotent: a repeat returns the first reservation with created false", async () => {
			const id = newId("checkout");
			const first = await createReservation(broker, id);
			const again = await createReservation(broker, id);
			expect(again).toMatchObject({ _id: id, created: false, createdAt: first.createdAt });
			const forShow = await broker.call<Reservation[], object>("reservations.listByShow", {
				showID: SOME_SHOW
			});
			expect(forShow.filter(r => r._id === id)).toHaveLength(1);
		});

		it("concurrent creates of one checkout store one reservation: exactly one is created", async () => {
			const id = newId("checkout");
			const answers = await Promise.all(
				Array.from({ length: 10 }, () => createReservation(broker, id))
			);
			expect(answers.filter(a => a.created)).toHaveLength(1);
			expect(new Set(answers.map(a => a.createdAt)).size).toBe(1);
		});

		it("create with the same checkout id but another fingerprint is 422 IDEMPOTENCY_KEY_REUSED", async () => {
			const id = newId("checkout");
			await createReservation(broker, id, { fingerprint: "first" });
			await expect(
				createReservation(broker, id, { fingerprint: "second", guests: 5 })
			).rejects.toMatchObject({ code: 422, type: "IDEMPOTENCY_KEY_REUSED" });
			expect(await getReservation(broker, id)).toMatchObject({ guests: 2 });
		});

		it("findCheckout returns the stored reservation with its fingerprint, or null", async () => {
			const id = newId("checkout");
			await createReservation(broker, id, { fingerprint: "abc123" });
			expect(await findCheckout(broker, id)).toMatchObject({
				_id: id,
				fingerprint: "abc123"
			});
			expect(await findCheckout(broker, newId("checkout"))).toBeNull();
		});

		it("get of an unknown reservation is 404 RESERVATION_NOT_FOUND", async () => {
			await expect(getReservation(broker, newId("checkout"))).rejects.toMatchObject({
				code: 404,
				type: "RESERVATION_NOT_FOUND"
			});
		});

		it("the public reservation never exposes the fingerprint", async () => {
			const id = newId("checkout");
			await createReservation(broker, id);
			expect(await getReservation(broker, id)).not.toHaveProperty("fingerprint");
		});

		it("listByShow returns the reservations of that show only", async () => {
			const showA = "aaaaaaaaaaaaaaaaaaaaaaaa";
			const showB = "bbbbbbbbbbbbbbbbbbbbbbbb";
			const a1 = newId("checkout");
			const a2 = newId("checkout");
			await createReservation(broker, a1, { showID: showA });
			await createReservation(broker, a2, { showID: showA });
			await createReservation(broker, newId("checkout"), { showID: showB });
			const list = await broker.call<Reservation[], object>("reservations.listByShow", {
				showID: showA
			});
			expect(list.map(r => r._id).sort()).toEqual([a1, a2].sort());
		});
	});

	describe("confirm and fail", () => {
		it("confirm moves pending to confirmed, and a repeat changes nothing and emits no second event", async () => {
			const id = newId("checkout");
			await createReservation(broker, id);
			const confirmed = await broker.call<Reservation, object>("reservations.confirm", {
				id
			});
			expect(confirmed).toMatchObject({ _id: id, status: "confirmed" });
			const again = await broker.call<Reservation, object>("reservations.confirm", { id });
			expect(again).toEqual(confirmed);
			await eventually("the confirmed event arrived", async () =>
				recorder.seen.some(e => e.event === "confirmed" && e.id === id)
			);
			expect(recorder.seen.filter(e => e.event === "confirmed" && e.id === id)).toHaveLength(
				1
			);
		});

		it("confirm of an unknown reservation is 404", async () => {
			await expect(
				broker.call("reservations.confirm", { id: newId("checkout") })
			).rejects.toMatchObject({ code: 404, type: "RESERVATION_NOT_FOUND" });
		});

		it("fail moves pending to failed, after which confirm is 409 CHECKOUT_FAILED", async () => {
			const id = newId("checkout");
			await createReservation(broker, id);
			expect(
				await broker.call("reservations.fail", { id, reason: "hold lost" })
			).toMatchObject({ status: "failed" });
			await expect(broker.call("reservations.confirm", { id })).rejects.toMatchObject({
				code: 409,
				type: "CHECKOUT_FAILED"
			});
			expect(await findCheckout(broker, id)).toMatchObject({ failReason: "hold lost" });
		});

		it("fail leaves a confirmed reservation confirmed", async () => {
			const id = newId("checkout");
			await createReservation(broker, id);
			await broker.call("reservations.confirm", { id });
			expect(
				await broker.call("reservations.fail", { id, reason: "too late" })
			).toMatchObject({ status: "confirmed" });
		});

		it("fail of an unknown reservation is 404", async () => {
			await expect(
				broker.call("reservations.fail", { id: newId("checkout"), reason: "x" })
			).rejects.toMatchObject({ code: 404, type: "RESERVATION_NOT_FOUND" });
		});
	});

	describe("cancel", () => {
		it("cancel moves confirmed to canceled and gives the seats back to the show", async () => {
			const show = await createShow(broker, 10);
			const id = await book(broker, show._id, 4);
			expect((await getShow(broker, show._id)).reserved).toBe(4);
			expect(await broker.call("reservations.cancel", { id })).toMatchObject({
				_id: id,
				status: "canceled",
				guests: 4
			});
			expect((await getShow(broker, show._id)).reserved).toBe(0);
			// The cancel's to-do entry goes a little later, with others.
			await eventually("the release is off the reconciler's list", async () =>
				Boolean((await findCheckout(broker, id))?.seatsReleased)
			);
		});

		it("cancel repeated one after another releases the seats exactly once and answers canceled each time", async () => {
			const show = await createShow(broker, 10);
			await book(broker, show._id, 3);
			const id = await book(broker, show._id, 4);
			for (let i = 0; i < 5; i++)
				expect(await broker.call("reservations.cancel", { id })).toMatchObject({
					status: "canceled"
				});
			expect((await getShow(broker, show._id)).reserved).toBe(3);
		});

		it("concurrent cancels of one reservation release the seats exactly once and emit one canceled event", async () => {
			const show = await createShow(broker, 10);
			await book(broker, show._id, 3);
			const id = await book(broker, show._id, 4);
			const answers = await Promise.all(
				Array.from({ length: 10 }, () =>
					broker.call<Reservation, object>("reservations.cancel", { id })
				)
			);
			for (const answer of answers) expect(answer).toMatchObject({ status: "canceled" });
			expect((await getShow(broker, show._id)).reserved).toBe(3);
			await eventually("the canceled event arrived", async () =>
				recorder.seen.some(e => e.event === "canceled" && e.id === id)
			);
			expect(recorder.seen.filter(e => e.event === "canceled" && e.id === id)).toHaveLength(
				1
			);
		});

		it("the seats of a canceled reservation can be booked again", async () => {
			const show = await createShow(broker, 4);
			const id = await book(broker, show._id, 4);
			await broker.call("reservations.cancel", { id });
			await expect(book(broker, show._id, 4)).resolves.toEqual(expect.any(String));
			expect((await getShow(broker, show._id)).reserved).toBe(4);
		});

		it("cancel of a pending or failed reservation is 409 RESERVATION_NOT_CANCELABLE and releases nothing", async () => {
			const show = await createShow(broker, 10);
			const pending = newId("checkout");
			await broker.call("shows.holdSeats", { showID: show._id, holdId: pending, count: 2 });
			await createReservation(broker, pending, { showID: show._id });
			await expect(broker.call("reservations.cancel", { id: pending })).rejects.toMatchObject(
				{ code: 409, type: "RESERVATION_NOT_CANCELABLE", data: { status: "pending" } }
			);
			const failed = newId("checkout");
			await createReservation(broker, failed, { showID: show._id });
			await broker.call("reservations.fail", { id: failed, reason: "test" });
			await expect(broker.call("reservations.cancel", { id: failed })).rejects.toMatchObject({
				code: 409,
				type: "RESERVATION_NOT_CANCELABLE",
				data: { status: "failed" }
			});
			expect((await getShow(broker, show._id)).reserved).toBe(2);
			expect(await getReservation(broker, pending)).toMatchObject({ status: "pending" });
		});

		it("cancel of an unknown reservation is 404", async () => {
			await expect(
				broker.call("reservations.cancel", { id: newId("checkout") })
			).rejects.toMatchObject({ code: 404, type: "RESERVATION_NOT_FOUND" });
		});
	});

	it("the reconciler leaves a pending checkout alone while its hold may still be confirmed", async () => {
		const show = await createShow(broker, 10);
		const id = newId("checkout");
		await broker.call("shows.holdSeats", { showID: show._id, holdId: id, count: 2 });
		await createReservation(broker, id, { showID: show._id });
		await reconciler(broker).reconcileCheckouts();
		expect(await getReservation(broker, id)).toMatchObject({ status: "pending" });
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	});
});

describe("reservations reconciler", () => {
	const TTL = 1;
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema({ holdTtlSeconds: TTL }),
			reservationsSchema({ holdTtlSeconds: TTL, reconcileGraceMs: 0 })
		]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("confirms an abandoned pending checkout whose hold was confirmed, keeping its seats sold", async () => {
		const show = await createShow(broker, 10);
		const id = newId("checkout");
		await broker.call("shows.holdSeats", { showID: show._id, holdId: id, count: 3 });
		await createReservation(broker, id, { showID: show._id, guests: 3 });
		await broker.call("shows.confirmHold", { showID: show._id, holdId: id });
		await outliveHold(TTL);
		await reconciler(broker).reconcileCheckouts();
		expect(await getReservation(broker, id)).toMatchObject({ status: "confirmed" });
		expect((await getShow(broker, show._id)).reserved).toBe(3);
	});

	it("fails an abandoned pending checkout whose hold expired, and its seats are back", async () => {
		const show = await createShow(broker, 10);
		const id = newId("checkout");
		await broker.call("shows.holdSeats", { showID: show._id, holdId: id, count: 3 });
		await createReservation(broker, id, { showID: show._id, guests: 3 });
		await outliveHold(TTL);
		await reconciler(broker).reconcileCheckouts();
		expect(await findCheckout(broker, id)).toMatchObject({
			status: "failed",
			failReason: "abandoned (expired)"
		});
		expect((await getShow(broker, show._id)).reserved).toBe(0);
		expect(await broker.call("shows.getHold", { showID: show._id, holdId: id })).toEqual({
			state: "missing"
		});
	});

	it("fails an abandoned pending checkout that never got seats", async () => {
		const show = await createShow(broker, 10);
		const id = newId("checkout");
		await createReservation(broker, id, { showID: show._id });
		await outliveHold(TTL);
		await reconciler(broker).reconcileCheckouts();
		expect(await findCheckout(broker, id)).toMatchObject({
			status: "failed",
			failReason: "abandoned (missing)"
		});
		expect((await getShow(broker, show._id)).reserved).toBe(0);
	});

	it("leaves confirmed, failed and canceled reservations as they are", async () => {
		const show = await createShow(broker, 10);
		const confirmed = await book(broker, show._id, 2);
		const canceled = await book(broker, show._id, 1);
		await broker.call("reservations.cancel", { id: canceled });
		const failed = newId("checkout");
		await createReservation(broker, failed, { showID: show._id });
		await broker.call("reservations.fail", { id: failed, reason: "test" });
		await outliveHold(TTL);
		await reconciler(broker).reconcileCheckouts();
		expect(await getReservation(broker, confirmed)).toMatchObject({ status: "confirmed" });
		expect(await getReservation(broker, canceled)).toMatchObject({ status: "canceled" });
		expect(await getReservation(broker, failed)).toMatchObject({ status: "failed" });
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	});
});

describe("reservations with a shows service that misbehaves", () => {
	const TTL = 1;
	let broker: ServiceBroker;
	const shows = {
		holdState: "held",
		releaseAnswer: { released: 0, state: "missing" } as { released: number; state: string },
		failReleases: 0,
		releases: [] as Array<{ holdId: string; onlyIfHeld?: boolean }>
	};

	/** Stands in for `shows`: answers as told, and records every release it is asked for. */
	const fakeShows: ServiceSchema = {
		name: "shows",
		actions: {
			getHold() {
				return { state: shows.holdState };
			},
			releaseSeats(ctx) {
				shows.releases.push(ctx.params as { holdId: string; onlyIfHeld?: boolean });
				if (shows.failReleases > 0) {
					shows.failReleases--;
					throw new Errors.MoleculerRetryableError("shows is down", 503, "SHOWS_DOWN");
				}
				return shows.releaseAnswer;
			}
		}
	};

	beforeAll(async () => {
		broker = await startBroker([
			fakeShows,
			reservationsSchema({ holdTtlSeconds: TTL, reconcileGraceMs: 0 })
		]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	beforeEach(() => {
		shows.holdState = "held";
		shows.releaseAnswer = { released: 0, state: "missing" };
		shows.failReleases = 0;
		shows.releases = [];
	});

	it("a cancel whose release fails is still recorded, and the reconciler releases the seats later, once", async () => {
		const id = newId("checkout");
		await createReservation(broker, id);
		await broker.call("reservations.confirm", { id });
		shows.failReleases = 1;
		expect(await broker.call("reservations.cancel", { id })).toMatchObject({
			status: "canceled"
		});
		expect(await findCheckout(broker, id)).toMatchObject({ seatsReleased: false });

		shows.releaseAnswer = { released: 2, state: "confirmed" };
		await reconciler(broker).reconcileCheckouts();
		expect(await findCheckout(broker, id)).toMatchObject({ seatsReleased: true });
		await reconciler(broker).reconcileCheckouts();
		expect(shows.releases.filter(r => r.holdId === id)).toHaveLength(2);
	});

	it("the reconciler releases an abandoned checkout's seats only if still held, never a sale", async () => {
		const id = newId("checkout");
		await createReservation(broker, id);
		shows.holdState = "expired";
		await outliveHold(TTL);
		await reconciler(broker).reconcileCheckouts();
		expect(shows.releases.filter(r => r.holdId === id)).toEqual([
			expect.objectContaining({ onlyIfHeld: true })
		]);
		expect(await getReservation(broker, id)).toMatchObject({ status: "failed" });
	});

	it("a checkout whose hold got confirmed between the reconciler's look and its release ends confirmed, not failed with its seats sold", async () => {
		const id = newId("checkout");
		await createReservation(broker, id);
		// The reconciler sees the seats still held, but by the time it releases them (only if
		// held) a late confirmation has sold them: the release answers "confirmed".
		shows.holdState = "held";
		shows.releaseAnswer = { released: 0, state: "confirmed" };
		await outliveHold(TTL);
		await reconciler(broker).reconcileCheckouts();
		expect(await getReservation(broker, id)).toMatchObject({ status: "confirmed" });
	});

	it("a failing shows service makes reconciliation fail loudly, leaving the checkout pending for the next run", async () => {
		const id = newId("checkout");
		await createReservation(broker, id);
		shows.failReleases = 1;
		await outliveHold(TTL);
		const { errors } = await settle([reconciler(broker).reconcileCheckouts()]);
		expect(errors).toEqual([expect.objectContaining({ type: "SHOWS_DOWN" })]);
		expect(await getReservation(broker, id)).toMatchObject({ status: "pending" });
		await reconciler(broker).reconcileCheckouts();
		expect(await getReservation(broker, id)).toMatchObject({ status: "failed" });
	});
});
