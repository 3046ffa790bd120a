/**
 * The gateway answers reads from the show list it holds (kept fresh by shows.changed events), and
 * refuses a checkout for a show that list shows sold out without asking any store.
 */
import type { ServiceBroker } from "moleculer";
import { SEED_SHOWS } from "../../services/shows.service";
import { createShowListCache } from "../../lib/gateway/show-list-cache";
import { firstPageAnswer } from "../../lib/gateway/show-reads";
import {
	apiSchema,
	createShow,
	eventually,
	listShows,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";

const RALLY = SEED_SHOWS[2]._id;

describe("api: the gateway's list refuses sold-out checkouts and never goes back in time", () => {
	let broker: ServiceBroker;
	const storeCalls: string[] = [];
	const counted = (name: string) => () => void storeCalls.push(name);

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema({ hooks: { before: { holdSeats: counted("shows.holdSeats") } } }),
			reservationsSchema({ hooks: { before: { create: counted("reservations.create") } } }),
			apiSchema({ showsCacheTtlMs: 3600000 })
		]);
		await broker.call("api.listShows", {});
	});

	afterAll(async () => {
		await broker.stop();
	});

	const checkout = (showID: string, count: number) =>
		broker.call("api.checkout", { showID, name: "Fan", count });

	it("a checkout for the sold-out rally is 409 NOT_ENOUGH_SEATS and calls neither shows nor reservations", async () => {
		storeCalls.length = 0;
		for (let i = 0; i < 100; i++)
			await expect(checkout(RALLY, 2)).rejects.toMatchObject({
				code: 409,
				type: "NOT_ENOUGH_SEATS",
				message: "cannot reserve 2 seats. Only 0 remaining."
			});
		expect(storeCalls).toEqual([]);
	});

	it("too many tickets is still 422 on a sold-out show", async () => {
		await expect(checkout(RALLY, 11)).rejects.toMatchObject({ code: 422 });
	});

	it("a show that sells out is refused at the gateway from the next event on; a cancel opens it again", async () => {
		const show = await createShow(broker, 3);
		await eventually("the list knows the new show", async () =>
			(await listShows(broker)).some(s => s._id === show._id)
		);
		const booked = (await checkout(show._id, 3)) as { _id: string };
		await eventually("the list shows it sold out", async () =>
			(await listShows(broker)).some(s => s._id === show._id && s.available === 0)
		);
		storeCalls.length = 0;
		await expect(checkout(show._id, 1)).rejects.toMatchObject({ type: "NOT_ENOUGH_SEATS" });
		expect(storeCalls).toEqual([]);

		await broker.call("api.cancelReservation", { id: booked._id });
		await eventually("a seat is on sale again", async () => {
			try {
				await checkout(show._id, 1);
				return true;
			} catch {
				return false;
			}
		});
		expect(storeCalls).toContain("shows.holdSeats");
	});

	it("an event older than the state applied is dropped", async () => {
		const show = await createShow(broker, 10);
		await broker.call("api.checkout", { showID: show._id, name: "Ann", count: 3 });
		const current = async () => (await listShows(broker)).find(s => s._id === show._id);
		await eventually("the booking is listed", async () => (await current())?.reserved === 3);
		await broker.broadcast("shows.changed", {
			...show,
			reserved: 0,
			available: 10,
			version: 1
		});
		expect(await current()).toMatchObject({ reserved: 3, available: 7 });
	});
});

describe("api: a client's own booking and cancel on its next read", () => {
	let broker: ServiceBroker;

	/** The gateway without its shows.changed listener: only answers can move its list. */
	const deafApi = () => {
		const schema = apiSchema({ showsCacheTtlMs: 3600000 });
		return { ...schema, events: { ...schema.events, "shows.changed": () => undefined } };
	};

	const listed = async (showID: string) => (await listShows(broker)).find(s => s._id === showID);

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), reservationsSchema(), deafApi()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("follows the seats that shows hands back with a checkout's and a cancel's answer", async () => {
		const show = await createShow(broker, 10);
		await broker.call("api.listShows", {});
		await eventually("the list knows the new show", async () =>
			Boolean(await listed(show._id))
		);
		const booking = (await broker.call("api.checkout", {
			showID: show._id,
			name: "Ann",
			count: 4
		})) as { _id: string };
		expect(await listed(show._id)).toMatchObject({ reserved: 4, available: 6 });
		await broker.call("api.cancelReservation", { id: booking._id });
		expect(await listed(show._id)).toMatchObject({ reserved: 0, available: 10 });
	});
});

describe("api: a shows node's resync", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		const api = apiSchema({ showsCacheTtlMs: 3600000 });
		// Deaf to shows.changed: as a gateway the shows nodes did not know of yet.
		const deaf = { ...api, events: { ...api.events, "shows.changed": () => undefined } };
		broker = await startBroker([showsSchema(), reservationsSchema(), deaf]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("reads the list again when the resync names this node, and only then", async () => {
		const show = await createShow(broker, 10);
		const houseSize = async () =>
			(await listShows(broker)).find(s => s._id === show._id)?.houseSize;
		expect(await houseSize()).toBe(10);
		await broker.call("shows.resize", { showID: show._id, houseSize: 12 });
		await broker.broadcast("shows.resync", { nodeIDs: ["another-gateway"] });
		expect(await houseSize()).toBe(10);
		await broker.broadcast("shows.resync", { nodeIDs: ["another-gateway", broker.nodeID] });
		expect(await houseSize()).toBe(12);
	});
});

describe("api: the sold-out shortcut outlives the list's safety TTL", () => {
	let broker: ServiceBroker;
	const holds: string[] = [];

	beforeAll(async () => {
		broker = await startBroker([
			showsSchema({ hooks: { before: { holdSeats: () => void holds.push("hold") } } }),
			reservationsSchema(),
			apiSchema({ showsCacheTtlMs: 200 })
		]);
		await broker.call("api.listShows", {});
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("with nobody reading the list, checkouts refresh it and keep refusing without the store", async () => {
		await new Promise(resolve => setTimeout(resolve, 300));
		const refuse = () =>
			expect(
				broker.call("api.checkout", { showID: RALLY, name: "Late", count: 1 })
			).rejects.toMatchObject({ type: "NOT_ENOUGH_SEATS" });
		await refuse(); // past the TTL: this one may ask the store, and refreshes the list
		await eventually("the list is fresh again", async () => {
			holds.length = 0;
			await refuse();
			return holds.length === 0;
		});
	});
});

describe("show reads: the cached first page", () => {
	it("keeps the page of the cached list, and never one of a fetch that raced a change", () => {
		const cache = createShowListCache();
		const cached = [{ _id: "a", name: "A", houseSize: 5, reserved: 1, available: 4 }];
		cache.shows = cached;
		const raced = [{ ...cached[0], reserved: 0, available: 5 }];
		expect(JSON.parse(String(firstPageAnswer(cache, raced, 100).body))).toEqual(raced);
		expect(cache.firstPage).toBeNull();
		expect(firstPageAnswer(cache, cached, 100)).toBe(firstPageAnswer(cache, cached, 100));
	});
});
