/**
 * Sold seats live outside the show's document: the document keeps counters and the checkouts in
 * flight, and each sale is one insert-once record. These tests prove the document stays small
 * through a sell-out, that sold seats are released exactly once however long after the sale, and
 * that a crash between a record and the document write neither loses nor double-counts seats.
 */
import type { ServiceBroker } from "moleculer";
import type { HoldView } from "../../lib/common/types";
import { createShowWriter, type ShowStore } from "../../lib/shows/show-writer";
import {
	newShowDoc,
	toPublicShow,
	type SeatRecord,
	type ShowDoc
} from "../../lib/shows/show-seats";
import { releaseHold, sellHold, takeHold } from "../../lib/shows/seat-changes";
import {
	createShow,
	eventually,
	getShow,
	newId,
	settle,
	showsSchema,
	startBroker
} from "./helpers";

type HoldAnswer = HoldView & { created: boolean };

function shows(broker: ServiceBroker) {
	return broker.getLocalService("shows") as unknown as {
		adapter: { findById(id: string): Promise<ShowDoc> };
		side: Record<string, { findById<T>(id: string): Promise<T | null> }>;
	};
}

async function buy(broker: ServiceBroker, showID: string, count: number, holdId = newId("sale")) {
	await broker.call<HoldAnswer, object>("shows.holdSeats", { showID, holdId, count });
	await broker.call("shows.confirmHold", { showID, holdId });
	return holdId;
}

describe("shows: sold seats leave the show document", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("a confirmed checkout is settled into `sold` and one sales record; the document keeps no trace of it", async () => {
		const show = await createShow(broker, 20);
		const holdId = await buy(broker, show._id, 3);
		await eventually("the sale is settled", async () => {
			const doc = await shows(broker).adapter.findById(show._id);
			return doc.holds.length === 0 && doc.sold === 3;
		});
		const doc = await shows(broker).adapter.findById(show._id);
		expect(doc).toMatchObject({ sold: 3, reserved: 3, holds: [], releasing: [] });
		expect(await shows(broker).side.show_sales.findById(holdId)).toMatchObject({
			_id: holdId,
			showID: show._id,
			count: 3
		});
		expect(await getShow(broker, show._id)).toMatchObject({ reserved: 3, available: 17 });
		expect(await broker.call("shows.getHold", { showID: show._id, holdId })).toEqual({
			state: "confirmed"
		});
	});

	it("a sell-out of 3,000 seats by 150 concurrent buyers of 1 to 10 sells exactly the house, and the document never outgrows the checkouts in flight", async () => {
		const house = 3000;
		const show = await createShow(broker, house);
		const sizes: number[] = [];
		let largest = 0;
		let sold = 0;
		const buyer = async (): Promise<void> => {
			for (;;) {
				const count = 1 + Math.floor(Math.random() * 10);
				try {
					await buy(broker, show._id, count);
					sold += count;
					sizes.push(count);
				} catch (err) {
					if ((err as { type?: string }).type !== "NOT_ENOUGH_SEATS") throw err;
					if ((await getShow(broker, show._id)).available === 0) return;
				}
				if (sizes.length % 50 === 0) {
					const doc = await shows(broker).adapter.findById(show._id);
					largest = Math.max(largest, JSON.stringify(doc).length);
				}
			}
		};
		await Promise.all(Array.from({ length: 150 }, buyer));
		expect(sold).toBe(house);
		expect(await getShow(broker, show._id)).toMatchObject({ reserved: house, available: 0 });
		await eventually("every sale is settled", async () => {
			const doc = await shows(broker).adapter.findById(show._id);
			return doc.holds.length === 0 && doc.sold === house;
		});
		expect(largest).toBeGreaterThan(0);
		// At most every buyer's hold in it at once (about 110 bytes each), whatever was sold before.
		expect(largest).toBeLessThan(150 * 128 + 1024);
	}, 120000);

	it("a sale canceled long after, behind hundreds of later sales, gives its seats back exactly once", async () => {
		const show = await createShow(broker, 1000);
		const first = await buy(broker, show._id, 4);
		await Promise.all(Array.from({ length: 300 }, () => buy(broker, show._id, 2)));
		expect((await getShow(broker, show._id)).reserved).toBe(604);

		const releases = await settle(
			Array.from({ length: 5 }, () =>
				broker.call<{ released: number; state: string }, object>("shows.releaseSeats", {
					showID: show._id,
					holdId: first
				})
			)
		);
		expect(releases.errors).toEqual([]);
		expect(releases.ok.map(r => r.released).sort()).toEqual([0, 0, 0, 0, 4]);
		expect((await getShow(broker, show._id)).reserved).toBe(600);
		await eventually("the release is settled", async () => {
			const doc = await shows(broker).adapter.findById(show._id);
			return doc.releasing.length === 0;
		});
		expect(
			await broker.call("shows.releaseSeats", { showID: show._id, holdId: first })
		).toEqual({ released: 0, state: "released" });
		expect(await broker.call("shows.getHold", { showID: show._id, holdId: first })).toEqual({
			state: "released"
		});
		await expect(
			broker.call("shows.confirmHold", { showID: show._id, holdId: first })
		).rejects.toMatchObject({ type: "HOLD_NOT_FOUND" });
		expect((await getShow(broker, show._id)).reserved).toBe(600);
	});

	it("onlyIfHeld reports a settled sale as confirmed and leaves it sold (the reconciler's question)", async () => {
		const show = await createShow(broker, 10);
		const holdId = await buy(broker, show._id, 2);
		await eventually(
			"settled",
			async () => (await shows(broker).adapter.findById(show._id)).holds.length === 0
		);
		expect(
			await broker.call("shows.releaseSeats", { showID: show._id, holdId, onlyIfHeld: true })
		).toEqual({ released: 0, state: "confirmed" });
		expect((await getShow(broker, show._id)).reserved).toBe(2);
	});

	it("a resumed checkout whose seats were already sold and settled gets its sale back, not a second hold", async () => {
		const show = await createShow(broker, 10);
		const holdId = await buy(broker, show._id, 3);
		await eventually(
			"settled",
			async () => (await shows(broker).adapter.findById(show._id)).holds.length === 0
		);
		const again = await broker.call<HoldAnswer, object>("shows.holdSeats", {
			showID: show._id,
			holdId,
			count: 3,
			resume: true
		});
		expect(again).toMatchObject({ created: false, state: "confirmed" });
		expect(await broker.call("shows.confirmHold", { showID: show._id, holdId })).toMatchObject({
			state: "confirmed"
		});
		expect((await getShow(broker, show._id)).reserved).toBe(3);
	});

	it("resize refuses to go below the seats sold plus held, with sales out of the document", async () => {
		const show = await createShow(broker, 20);
		await buy(broker, show._id, 6);
		await broker.call("shows.holdSeats", { showID: show._id, holdId: newId("h"), count: 4 });
		await expect(
			broker.call("shows.resize", { showID: show._id, houseSize: 9 })
		).rejects.toMatchObject({ type: "HOUSE_TOO_SMALL" });
		expect(
			await broker.call("shows.resize", { showID: show._id, houseSize: 10 })
		).toMatchObject({
			houseSize: 10,
			available: 0
		});
	});
});

/** A store in memory whose writes can be made to fail, as a crash between two steps would. */
function memoryStore(show: ShowDoc) {
	let stored = structuredClone(show);
	const sales = new Map<string, SeatRecord>();
	const releases = new Map<string, SeatRecord>();
	const collection = (records: Map<string, SeatRecord>) => ({
		async insertAllOnce(docs: SeatRecord[]) {
			for (const doc of docs) if (!records.has(doc._id)) records.set(doc._id, doc);
		},
		async findById<T>(id: string) {
			state.lookups++;
			return (records.get(id) ?? null) as T | null;
		},
		async find<T>(query: { showID?: string }) {
			state.scans++;
			return [...records.values()].filter(r => r.showID === query.showID) as T[];
		}
	});
	const state = {
		failSaves: 0,
		/** Reads of one record by id, and reads of all of a show's records. */
		lookups: 0,
		scans: 0,
		get doc() {
			return stored;
		},
		sales,
		releases
	};
	const store: ShowStore = {
		async load() {
			return structuredClone(stored);
		},
		async save(next, expectedVersion) {
			if (state.failSaves > 0) {
				state.failSaves--;
				throw new Error("store went away");
			}
			if (stored.version !== expectedVersion) return false;
			stored = structuredClone(next);
			return true;
		},
		records: () => ({ sales: collection(sales), releases: collection(releases) }),
		saved: () => undefined,
		warn: () => undefined
	};
	return { store, state };
}

describe("show writer: a crash between a record and the document write", () => {
	const limits = { maxChangesPerWrite: 100, maxWriteAttempts: 3, maxKnownRecords: 1000 };

	it("a sales record written before a failed document write is settled once by the next write", async () => {
		const show = newShowDoc({ _id: "a".repeat(24), name: "Crash", houseSize: 10, presold: 0 });
		show.holds.push({
			id: "checkout-1",
			count: 4,
			state: "confirmed",
			expiresAt: null,
			createdAt: 0
		});
		const { store, state } = memoryStore(show);
		const writer = createShowWriter(store, limits);

		state.failSaves = 1;
		await expect(writer.settle(show._id)).rejects.toThrow("store went away");
		// The record is there, the document still holds the confirmed hold: counted once.
		expect(state.sales.has("checkout-1")).toBe(true);
		expect(toPublicShow(state.doc).reserved).toBe(4);

		await writer.settle(show._id);
		expect(state.doc).toMatchObject({ sold: 4, holds: [], reserved: 4 });
		expect(state.sales.size).toBe(1);
		expect(await writer.findSettled(show._id, "checkout-1")).toMatchObject({
			state: "confirmed",
			count: 4
		});
	});

	it("a release whose record was written before a failed document write is not given back twice", async () => {
		const show = newShowDoc({ _id: "b".repeat(24), name: "Crash", houseSize: 10, presold: 0 });
		show.sold = 0;
		show.releasing.push({ id: "checkout-2", count: 3 });
		const { store, state } = memoryStore(show);
		state.sales.set("checkout-2", { _id: "checkout-2", showID: show._id, count: 3, at: 0 });
		const writer = createShowWriter(store, limits);

		state.failSaves = 1;
		await expect(writer.settle(show._id)).rejects.toThrow();
		await writer.settle(show._id);
		expect(state.doc).toMatchObject({ sold: 0, releasing: [], reserved: 0 });
		expect(await writer.findSettled(show._id, "checkout-2")).toMatchObject({
			state: "released"
		});
	});
});

describe("show writer: what a node knows of settled checkouts", () => {
	const limits = { maxChangesPerWrite: 100, maxWriteAttempts: 3, maxKnownRecords: 1000 };
	const hour = { ttlMs: 3600000, resume: false };

	async function sell(writer: ReturnType<typeof createShowWriter>, showID: string, id: string) {
		await writer.mutate(
			showID,
			takeHold(showID, id, 2, { ...hour, findSettled: writer.findSettled })
		);
		await writer.mutate(showID, sellHold(showID, id, writer.findSettled));
	}
	const release = (writer: ReturnType<typeof createShowWriter>, showID: string, id: string) =>
		writer.mutate(showID, releaseHold(showID, id, false, writer.findSettled));

	it("cancels of settled sales are answered from the records the node read once and wrote since, not by a lookup each", async () => {
		const show = newShowDoc({ _id: "c".repeat(24), name: "Known", houseSize: 100, presold: 0 });
		const { store, state } = memoryStore(show);
		const writer = createShowWriter(store, limits);
		for (let i = 0; i < 10; i++) await sell(writer, show._id, `sale-${i}`);
		await writer.settle(show._id);
		expect(state.doc.holds).toEqual([]);

		for (let i = 0; i < 10; i++)
			expect(await release(writer, show._id, `sale-${i}`)).toEqual({
				released: 2,
				state: "confirmed"
			});
		for (let i = 0; i < 10; i++)
			expect(await release(writer, show._id, `sale-${i}`)).toEqual({
				released: 0,
				state: "released"
			});
		await writer.settle(show._id);
		expect(state.doc).toMatchObject({ sold: 0, reserved: 0, releasing: [] });
		expect(state.releases.size).toBe(10);
		expect(state.lookups).toBe(0);
		// One read of the show's sales and one of its releases, at the first cancel.
		expect(state.scans).toBe(2);
	});

	it("a write by another node makes this node read the records again, so a sale given back there is not given back twice", async () => {
		const show = newShowDoc({ _id: "d".repeat(24), name: "Moved", houseSize: 100, presold: 0 });
		const { store, state } = memoryStore(show);
		const here = createShowWriter(store, limits);
		const there = createShowWriter(store, limits);
		await sell(here, show._id, "sale-a");
		await sell(here, show._id, "sale-b");
		await here.settle(show._id);
		// This node learns the show's records with a first cancel.
		await release(here, show._id, "sale-b");
		await here.settle(show._id);

		// The shard moves: the other node gives sale-a back and settles it.
		expect(await release(there, show._id, "sale-a")).toMatchObject({ released: 2 });
		await there.settle(show._id);
		expect(state.releases.has("sale-a")).toBe(true);

		// Back here, a repeat of that cancel finds it given back.
		expect(await release(here, show._id, "sale-a")).toEqual({ released: 0, state: "released" });
		await here.settle(show._id);
		expect(state.doc).toMatchObject({ sold: 0, reserved: 0, releasing: [] });
	});

	it("a show with more records than the node keeps is answered by lookups, the same way", async () => {
		const show = newShowDoc({ _id: "e".repeat(24), name: "Big", houseSize: 100, presold: 0 });
		const { store, state } = memoryStore(show);
		const writer = createShowWriter(store, { ...limits, maxKnownRecords: 2 });
		for (let i = 0; i < 3; i++) await sell(writer, show._id, `sale-${i}`);
		await writer.settle(show._id);
		for (let i = 0; i < 3; i++) {
			expect(await release(writer, show._id, `sale-${i}`)).toMatchObject({ released: 2 });
			expect(await release(writer, show._id, `sale-${i}`)).toMatchObject({ released: 0 });
		}
		await writer.settle(show._id);
		expect(state.doc).toMatchObject({ sold: 0, reserved: 0 });
		expect(state.lookups).toBeGreaterThan(0);
		// Found too big once: not read whole again at every cancel.
		expect(state.scans).toBe(2);
	});
});

describe("show writer: a node's copy of the document it last stored", () => {
	const limits = { maxChangesPerWrite: 100, maxWriteAttempts: 3, maxKnownRecords: 1000 };
	const hold = (
		writer: ReturnType<typeof createShowWriter>,
		showID: string,
		id: string,
		count: number,
		ttlMs = 3600000
	) =>
		writer.mutate(
			showID,
			takeHold(showID, id, count, { ttlMs, resume: false, findSettled: writer.findSettled })
		);

	it("a checkout refused by a stale copy is decided again on the store, where another node gave seats back", async () => {
		const show = newShowDoc({ _id: "f".repeat(24), name: "Stale", houseSize: 4, presold: 0 });
		const { store } = memoryStore(show);
		const here = createShowWriter(store, limits);
		const there = createShowWriter(store, limits);
		await hold(here, show._id, "first", 4);
		// Another node (the shard moved) gives the seats back.
		await there.mutate(show._id, releaseHold(show._id, "first", false, there.findSettled));
		expect(await hold(here, show._id, "second", 2)).toMatchObject({ created: true, count: 2 });
	});

	it("a settle with nothing due on a stale copy still drops the holds that expired in the store", async () => {
		const show = newShowDoc({ _id: "0".repeat(24), name: "Sweep", houseSize: 4, presold: 0 });
		const { store, state } = memoryStore(show);
		const here = createShowWriter(store, limits);
		const there = createShowWriter(store, limits);
		await hold(here, show._id, "kept", 1);
		await hold(there, show._id, "brief", 2, 1);
		await new Promise(resolve => setTimeout(resolve, 5));
		await here.settle(show._id);
		expect(state.doc.holds.map(h => h.id)).toEqual(["kept"]);
	});
});
