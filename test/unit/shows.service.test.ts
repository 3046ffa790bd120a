import type { ServiceBroker } from "moleculer";
import { SEED_SHOWS } from "../../services/shows.service";
import type { HoldView, PublicShow } from "../../lib/common/types";
import {
	createShow,
	eventually,
	getShow,
	newId,
	outliveHold,
	settle,
	showsSchema,
	sleep,
	startBroker
} from "./helpers";

type HoldAnswer = HoldView & { created: boolean };

const UNKNOWN_SHOW = "0123456789abcdef01234567";

function hold(broker: ServiceBroker, showID: string, count: number, holdId = newId("hold")) {
	return broker.call<HoldAnswer, object>("shows.holdSeats", { showID, holdId, count });
}

function holdState(broker: ServiceBroker, showID: string, holdId: string) {
	return broker.call<{ state: string }, object>("shows.getHold", { showID, holdId });
}

describe("shows service", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	describe("params validation", () => {
		const showID = SEED_SHOWS[0]._id;
		const holdId = "checkout-0001";
		it.each([
			["list", { limit: 0 }],
			["list", { offset: -1 }],
			["get", {}],
			["get", { showID: "not-a-show-id" }],
			["holdSeats", { showID, holdId, count: 0 }],
			["holdSeats", { showID, holdId, count: 1.5 }],
			["holdSeats", { showID, holdId, count: "2" }],
			["holdSeats", { showID, holdId: "short", count: 1 }],
			["holdSeats", { showID, holdId: "has spaces in it", count: 1 }],
			["holdSeats", { holdId, count: 1 }],
			["holdSeats", { showID: "5b805a00297ae6047030f2e", holdId, count: 1 }],
			["confirmHold", { showID }],
			["confirmHold", { showID, holdId: "x".repeat(65) }],
			["releaseSeats", { showID, holdId, onlyIfHeld: "yes" }],
			["releaseSeats", { holdId }],
			["getHold", { showID: 42, holdId }],
			["expireHolds", { showID: "zz805a00297ae6047030f2e0" }],
			["holds", { showID: "nope" }],
			["create", { name: "", houseSize: 10 }],
			["create", { name: "Gala", houseSize: 0 }],
			["create", { name: "Gala", houseSize: 100001 }],
			["create", { name: "Gala" }],
			["resize", { showID, houseSize: -5 }],
			["resize", { showID, houseSize: 2.5 }]
		])("shows.%s rejects %j with a 422 ValidationError", async (action, params) => {
			await expect(broker.call(`shows.${action}`, params)).rejects.toMatchObject({
				name: "ValidationError",
				code: 422
			});
		});

		it("a rejected holdSeats holds nothing", async () => {
			const show = await createShow(broker, 10);
			await expect(
				broker.call("shows.holdSeats", { showID: show._id, holdId, count: 0 })
			).rejects.toMatchObject({ code: 422 });
			expect((await getShow(broker, show._id)).reserved).toBe(0);
		});
	});

	describe("reads", () => {
		it("lists the three seeded demo shows with their original ids and availability", async () => {
			const shows = await broker.call<PublicShow[], object>("shows.list", {});
			for (const seed of SEED_SHOWS) {
				expect(shows).toContainEqual({
					_id: seed._id,
					name: seed.name,
					houseSize: seed.houseSize,
					reserved: seed.presold,
					available: seed.houseSize - seed.presold
				});
			}
		});

		it("list honours offset and limit", async () => {
			const all = await broker.call<PublicShow[], object>("shows.list", {});
			const page = await broker.call<PublicShow[], object>("shows.list", {
				offset: 1,
				limit: 1
			});
			expect(page).toEqual([all[1]]);
		});

		it("get answers 404 SHOW_NOT_FOUND for a well-formed unknown id", async () => {
			await expect(getShow(broker, UNKNOWN_SHOW)).rejects.toMatchObject({
				code: 404,
				type: "SHOW_NOT_FOUND"
			});
		});

		it("create adds a show with a 24-hex id that get and list then return", async () => {
			const show = await createShow(broker, 40, "  Opera  ");
			expect(show._id).toMatch(/^[0-9a-f]{24}$/);
			expect(show).toMatchObject({
				name: "Opera",
				houseSize: 40,
				reserved: 0,
				available: 40
			});
			expect(await getShow(broker, show._id)).toEqual(show);
			const list = await broker.call<PublicShow[], object>("shows.list", {});
			expect(list).toContainEqual(show);
		});
	});

	describe("holdSeats", () => {
		it("holds seats: reserved goes up and available down by the count", async () => {
			const show = await createShow(broker, 10);
			const answer = await hold(broker, show._id, 4, "checkout-a1b2");
			expect(answer).toMatchObject({
				holdId: "checkout-a1b2",
				showID: show._id,
				count: 4,
				state: "held",
				created: true
			});
			expect(answer.expiresAt).toEqual(expect.any(Number));
			expect(await getShow(broker, show._id)).toMatchObject({ reserved: 4, available: 6 });
		});

		it("refuses more seats than remain with 409 NOT_ENOUGH_SEATS and the remaining count", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 7);
			await expect(hold(broker, show._id, 7)).rejects.toMatchObject({
				code: 409,
				type: "NOT_ENOUGH_SEATS",
				message: "cannot reserve 7 seats. Only 3 remaining.",
				data: { requested: 7, remaining: 3 }
			});
			expect((await getShow(broker, show._id)).reserved).toBe(7);
		});

		it("refuses any seat of the sold-out seeded rally", async () => {
			await expect(hold(broker, SEED_SHOWS[2]._id, 1)).rejects.toMatchObject({
				code: 409,
				type: "NOT_ENOUGH_SEATS"
			});
		});

		it("answers 404 SHOW_NOT_FOUND for an unknown show", async () => {
			await expect(hold(broker, UNKNOWN_SHOW, 1)).rejects.toMatchObject({
				code: 404,
				type: "SHOW_NOT_FOUND"
			});
		});

		it("200 concurrent holds of 1 seat on a 50-seat show: exactly 50 succeed, the rest get 409, reserved ends at 50", async () => {
			const show = await createShow(broker, 50);
			const { ok, errors } = await settle(
				Array.from({ length: 200 }, () => hold(broker, show._id, 1))
			);
			expect(ok).toHaveLength(50);
			expect(errors).toHaveLength(150);
			for (const err of errors)
				expect(err).toMatchObject({ code: 409, type: "NOT_ENOUGH_SEATS" });
			expect(new Set(ok.map(h => h.holdId)).size).toBe(50);
			expect(await getShow(broker, show._id)).toMatchObject({ reserved: 50, available: 0 });
			const holds = await broker.call<HoldView[], object>("shows.holds", {
				showID: show._id
			});
			expect(holds).toHaveLength(50);
		});

		it("concurrent holds of mixed sizes never exceed the house and reserved equals the seats granted", async () => {
			const show = await createShow(broker, 37);
			const counts = Array.from({ length: 60 }, (_, i) => (i % 4) + 1);
			const { ok, errors } = await settle(counts.map(c => hold(broker, show._id, c)));
			const granted = ok.reduce((sum, h) => sum + h.count, 0);
			expect(granted).toBeLessThanOrEqual(37);
			for (const err of errors)
				expect(err).toMatchObject({ code: 409, type: "NOT_ENOUGH_SEATS" });
			// Seats only ever went down, so every refused request still cannot fit at the end.
			const smallestRefused = Math.min(
				...errors.map(e => (e.data as { requested: number }).requested)
			);
			expect(37 - granted).toBeLessThan(smallestRefused);
			expect((await getShow(broker, show._id)).reserved).toBe(granted);
		});

		it("is idempotent by holdId: a repeat returns the same hold, created false, and holds no more seats", async () => {
			const show = await createShow(broker, 10);
			const first = await hold(broker, show._id, 3, "checkout-idem-1");
			const again = await hold(broker, show._id, 3, "checkout-idem-1");
			expect(first.created).toBe(true);
			expect(again).toEqual({ ...first, created: false });
			expect((await getShow(broker, show._id)).reserved).toBe(3);
		});

		it("repeating holdSeats does not extend a hold's deadline", async () => {
			const show = await createShow(broker, 10);
			const first = await hold(broker, show._id, 2, "checkout-renew-1");
			await sleep(20);
			const again = await hold(broker, show._id, 2, "checkout-renew-1");
			expect(again.expiresAt).toBe(first.expiresAt);
		});

		it("concurrent duplicates of one holdId create one hold: one created, seats counted once", async () => {
			const show = await createShow(broker, 10);
			const answers = await Promise.all(
				Array.from({ length: 20 }, () => hold(broker, show._id, 2, "checkout-dup-1"))
			);
			expect(answers.filter(a => a.created)).toHaveLength(1);
			expect(new Set(answers.map(a => a.expiresAt)).size).toBe(1);
			expect((await getShow(broker, show._id)).reserved).toBe(2);
		});

		it("the same holdId with another count is refused with 422 IDEMPOTENCY_KEY_REUSED and changes nothing", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 3, "checkout-idem-2");
			await expect(hold(broker, show._id, 4, "checkout-idem-2")).rejects.toMatchObject({
				code: 422,
				type: "IDEMPOTENCY_KEY_REUSED"
			});
			expect((await getShow(broker, show._id)).reserved).toBe(3);
		});

		it("holds on one show do not touch another show's seats", async () => {
			const a = await createShow(broker, 5);
			const b = await createShow(broker, 5);
			await Promise.all([hold(broker, a._id, 5), hold(broker, b._id, 2)]);
			expect((await getShow(broker, a._id)).reserved).toBe(5);
			expect((await getShow(broker, b._id)).reserved).toBe(2);
		});
	});

	describe("confirmHold, releaseSeats, getHold, holds", () => {
		it("confirmHold makes a hold confirmed with no deadline, and repeating it changes nothing", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 2, "checkout-conf-1");
			const confirmed = await broker.call<HoldView, object>("shows.confirmHold", {
				showID: show._id,
				holdId: "checkout-conf-1"
			});
			expect(confirmed).toMatchObject({ state: "confirmed", expiresAt: null, count: 2 });
			const again = await broker.call<HoldView, object>("shows.confirmHold", {
				showID: show._id,
				holdId: "checkout-conf-1"
			});
			expect(again).toEqual(confirmed);
			expect((await getShow(broker, show._id)).reserved).toBe(2);
			expect(await holdState(broker, show._id, "checkout-conf-1")).toEqual({
				state: "confirmed"
			});
		});

		it("confirmHold of a hold that never existed is 409 HOLD_NOT_FOUND", async () => {
			const show = await createShow(broker, 10);
			await expect(
				broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-none" })
			).rejects.toMatchObject({ code: 409, type: "HOLD_NOT_FOUND" });
		});

		it("releaseSeats gives a hold's seats back once: a repeat releases 0 and reports missing", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 3, "checkout-keep");
			await hold(broker, show._id, 4, "checkout-rel-1");
			const params = { showID: show._id, holdId: "checkout-rel-1" };
			expect(await broker.call("shows.releaseSeats", params)).toEqual({
				released: 4,
				state: "held"
			});
			expect(await broker.call("shows.releaseSeats", params)).toEqual({
				released: 0,
				state: "missing"
			});
			expect((await getShow(broker, show._id)).reserved).toBe(3);
		});

		it("concurrent releases of one hold release its seats exactly once", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 3, "checkout-keep");
			await hold(broker, show._id, 4, "checkout-rel-2");
			const answers = await Promise.all(
				Array.from({ length: 10 }, () =>
					broker.call<{ released: number }, object>("shows.releaseSeats", {
						showID: show._id,
						holdId: "checkout-rel-2"
					})
				)
			);
			expect(answers.reduce((sum, a) => sum + a.released, 0)).toBe(4);
			expect((await getShow(broker, show._id)).reserved).toBe(3);
		});

		it("releaseSeats with onlyIfHeld leaves a confirmed (sold) hold alone; without it the sale is undone", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 2, "checkout-sold");
			await broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-sold" });
			expect(
				await broker.call("shows.releaseSeats", {
					showID: show._id,
					holdId: "checkout-sold",
					onlyIfHeld: true
				})
			).toEqual({ released: 0, state: "confirmed" });
			expect((await getShow(broker, show._id)).reserved).toBe(2);
			expect(
				await broker.call("shows.releaseSeats", {
					showID: show._id,
					holdId: "checkout-sold"
				})
			).toEqual({ released: 2, state: "confirmed" });
			expect((await getShow(broker, show._id)).reserved).toBe(0);
		});

		it("releaseSeats on an unknown show is 404 SHOW_NOT_FOUND", async () => {
			await expect(
				broker.call("shows.releaseSeats", { showID: UNKNOWN_SHOW, holdId: "checkout-x1" })
			).rejects.toMatchObject({ code: 404, type: "SHOW_NOT_FOUND" });
		});

		it("getHold reports held, confirmed and missing", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 1, "checkout-st-1");
			await hold(broker, show._id, 1, "checkout-st-2");
			await broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-st-2" });
			expect(await holdState(broker, show._id, "checkout-st-1")).toEqual({ state: "held" });
			expect(await holdState(broker, show._id, "checkout-st-2")).toEqual({
				state: "confirmed"
			});
			expect(await holdState(broker, show._id, "checkout-st-3")).toEqual({
				state: "missing"
			});
		});

		it("holds lists a show's live unconfirmed holds only", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 1, "checkout-ls-1");
			await hold(broker, show._id, 2, "checkout-ls-2");
			await broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-ls-2" });
			const holds = await broker.call<HoldView[], object>("shows.holds", {
				showID: show._id
			});
			expect(holds).toEqual([
				expect.objectContaining({ holdId: "checkout-ls-1", count: 1, state: "held" })
			]);
		});
	});

	describe("resize", () => {
		it("refuses a house smaller than the seats held or sold with 409 HOUSE_TOO_SMALL", async () => {
			const show = await createShow(broker, 20);
			await hold(broker, show._id, 10);
			await expect(
				broker.call("shows.resize", { showID: show._id, houseSize: 9 })
			).rejects.toMatchObject({ code: 409, type: "HOUSE_TOO_SMALL" });
			expect(await getShow(broker, show._id)).toMatchObject({ houseSize: 20, reserved: 10 });
		});

		it("allows a house exactly the size of what is reserved, leaving nothing available", async () => {
			const show = await createShow(broker, 20);
			await hold(broker, show._id, 10);
			expect(
				await broker.call("shows.resize", { showID: show._id, houseSize: 10 })
			).toMatchObject({ houseSize: 10, reserved: 10, available: 0 });
			await expect(hold(broker, show._id, 1)).rejects.toMatchObject({ code: 409 });
		});

		it("a bigger house makes more seats available to hold", async () => {
			const show = await createShow(broker, 2);
			await hold(broker, show._id, 2);
			await broker.call("shows.resize", { showID: show._id, houseSize: 5 });
			await expect(hold(broker, show._id, 3)).resolves.toMatchObject({ created: true });
			expect(await getShow(broker, show._id)).toMatchObject({ reserved: 5, available: 0 });
		});

		it("never shrinks the sold-out rally below its presold seats", async () => {
			await expect(
				broker.call("shows.resize", { showID: SEED_SHOWS[2]._id, houseSize: 499 })
			).rejects.toMatchObject({ code: 409, type: "HOUSE_TOO_SMALL" });
		});

		it("resizes racing concurrent holds never leave more seats reserved than the house", async () => {
			const show = await createShow(broker, 50);
			const holds = Array.from({ length: 60 }, () => hold(broker, show._id, 1));
			const resizes = [30, 45, 20].map(houseSize =>
				broker.call<PublicShow, object>("shows.resize", { showID: show._id, houseSize })
			);
			const [held] = await Promise.all([settle(holds), settle(resizes)]);
			const final = await getShow(broker, show._id);
			expect(final.reserved).toBe(held.ok.length);
			expect(final.reserved).toBeLessThanOrEqual(final.houseSize);
			expect(final.available).toBeGreaterThanOrEqual(0);
		});

		it("resize of an unknown show is 404 SHOW_NOT_FOUND", async () => {
			await expect(
				broker.call("shows.resize", { showID: UNKNOWN_SHOW, houseSize: 10 })
			).rejects.toMatchObject({ code: 404, type: "SHOW_NOT_FOUND" });
		});
	});
});

describe("shows service: hold expiry", () => {
	const TTL = 1;

	describe("without the sweeper", () => {
		let broker: ServiceBroker;

		beforeAll(async () => {
			broker = await startBroker([showsSchema({ holdTtlSeconds: TTL })]);
		});

		afterAll(async () => {
			await broker.stop();
		});

		it("expired holds stop counting at once: the next hold gets their seats", async () => {
			const show = await createShow(broker, 5);
			await hold(broker, show._id, 5);
			await outliveHold(TTL);
			await expect(hold(broker, show._id, 5)).resolves.toMatchObject({ created: true });
			expect(await getShow(broker, show._id)).toMatchObject({ reserved: 5, available: 0 });
		});

		it("a refusal reports the remaining seats without the expired holds", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 6);
			await hold(broker, show._id, 2);
			await outliveHold(TTL);
			// Only the hold made after the wait is live: 10 - 3 = 7 remain.
			await hold(broker, show._id, 3);
			await expect(hold(broker, show._id, 8)).rejects.toMatchObject({
				code: 409,
				data: { requested: 8, remaining: 7 }
			});
		});

		it("resize may shrink the house onto seats whose holds have expired", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 8);
			await outliveHold(TTL);
			await expect(
				broker.call("shows.resize", { showID: show._id, houseSize: 3 })
			).resolves.toMatchObject({ houseSize: 3, reserved: 0, available: 3 });
		});

		it("confirmHold after the deadline is 409 HOLD_EXPIRED and the seats go back", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 4, "checkout-late-1");
			await outliveHold(TTL);
			expect(await holdState(broker, show._id, "checkout-late-1")).toEqual({
				state: "expired"
			});
			await expect(
				broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-late-1" })
			).rejects.toMatchObject({ code: 409, type: "HOLD_EXPIRED" });
			expect((await getShow(broker, show._id)).reserved).toBe(0);
			expect(await holdState(broker, show._id, "checkout-late-1")).toEqual({
				state: "missing"
			});
		});

		it("a confirmed hold never expires", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 4, "checkout-kept-1");
			await broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-kept-1" });
			await outliveHold(TTL);
			await broker.call("shows.expireHolds", { showID: show._id });
			expect(await holdState(broker, show._id, "checkout-kept-1")).toEqual({
				state: "confirmed"
			});
			expect((await getShow(broker, show._id)).reserved).toBe(4);
		});

		it("expired holds vanish from the operators' holds list", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 1, "checkout-gone-1");
			await outliveHold(TTL);
			expect(await broker.call("shows.holds", { showID: show._id })).toEqual([]);
		});

		it("expireHolds drops expired holds, reports how many, and returns their seats", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 2);
			await hold(broker, show._id, 3);
			await outliveHold(TTL);
			expect(await broker.call("shows.expireHolds", { showID: show._id })).toEqual({
				expired: 2
			});
			expect((await getShow(broker, show._id)).reserved).toBe(0);
		});
	});

	describe("with the sweeper", () => {
		let broker: ServiceBroker;

		beforeAll(async () => {
			broker = await startBroker([
				showsSchema({ holdTtlSeconds: TTL, sweepIntervalMs: 100 })
			]);
		});

		afterAll(async () => {
			await broker.stop();
		});

		it("the sweeper returns expired holds' seats on a show nobody writes to", async () => {
			const show = await createShow(broker, 10);
			await hold(broker, show._id, 3, "checkout-swept-1");
			await hold(broker, show._id, 2, "checkout-sold-1");
			await broker.call("shows.confirmHold", { showID: show._id, holdId: "checkout-sold-1" });
			// Reads stop counting an expired hold at once; the sweeper removes it from the store.
			await eventually(
				"the sweeper dropped the expired hold",
				async () =>
					(await holdState(broker, show._id, "checkout-swept-1")).state === "missing"
			);
			expect((await getShow(broker, show._id)).reserved).toBe(2);
			expect(await holdState(broker, show._id, "checkout-sold-1")).toEqual({
				state: "confirmed"
			});
		});
	});
});
