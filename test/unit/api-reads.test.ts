/**
 * The gateway answers reads from the show list it holds (kept fresh by shows.changed events), and
 * refuses a checkout for a show that list shows sold out without asking any store.
 */
import type { ServiceBroker } from "moleculer";
import { SEED_SHOWS } from "../../services/shows.service";
import type { PublicShow } from "../../lib/types";
import {
	apiSchema,
	createShow,
	eventually,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";

const RALLY = SEED_SHOWS[2]._id;

describe("api: sold-out checkouts refused from the gateway's list", () => {
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
			JSON.parse(String(await broker.call("api.listShows", {}))).some(
				(s: PublicShow) => s._id === show._id
			)
		);
		const booked = (await checkout(show._id, 3)) as { _id: string };
		await eventually("the list shows it sold out", async () =>
			JSON.parse(String(await broker.call("api.listShows", {}))).some(
				(s: PublicShow) => s._id === show._id && s.available === 0
			)
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
});
