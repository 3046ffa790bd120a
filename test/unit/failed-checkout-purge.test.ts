/**
 * Failed checkouts are not kept forever: the reservations reconciler removes a failed checkout's
 * booking and outcome once the Idempotency-Key window is over (no key can name it any more), and
 * leaves confirmed, canceled and pending reservations, and failed ones inside the window, alone.
 */
import type { ServiceBroker } from "moleculer";
import type { SideCollection } from "../../lib/store/store-api";
import type { ReservationDoc } from "../../lib/common/types";
import { newId, reservationsSchema, showsSchema, startBroker } from "./helpers";

const HOUR = 60 * 60 * 1000;
const SOME_SHOW = "5b805a570cee1505a52bc75d";

interface ReservationsInternals {
	side: Record<"reservations" | "reservation_states", SideCollection>;
	keysPurgedAt: number;
	reconcileCheckouts(): Promise<void>;
}

let broker: ServiceBroker;
let reservations: ReservationsInternals;

/** A reservation written as its facts, `hoursAgo` old, with these outcome and cancel facts. */
async function reservationWith(
	hoursAgo: number,
	outcome: "confirmed" | "failed" | null,
	canceled = false
): Promise<string> {
	const id = newId("r");
	const at = Date.now() - hoursAgo * HOUR;
	const { reservations: bookings, reservation_states: states } = reservations.side;
	await bookings.insertOnce({
		_id: id,
		showID: SOME_SHOW,
		name: "Ann",
		guests: 2,
		fingerprint: "fp",
		createdAt: at
	});
	if (outcome)
		await states.insertOnce({ _id: `${id}:outcome`, reservation: id, status: outcome, at });
	if (canceled)
		await states.insertOnce({ _id: `${id}:canceled`, reservation: id, status: "canceled", at });
	return id;
}

const findCheckout = (id: string) =>
	broker.call<ReservationDoc | null, object>("reservations.findCheckout", { id });

beforeAll(async () => {
	broker = await startBroker([showsSchema(), reservationsSchema()]);
	reservations = broker.getLocalService("reservations") as unknown as ReservationsInternals;
});

afterAll(async () => {
	await broker.stop();
});

describe("failed checkouts", () => {
	it("are removed, booking and outcome, once older than the Idempotency-Key window; nothing else is", async () => {
		const oldFailed = [
			await reservationWith(25, "failed"),
			await reservationWith(30, "failed")
		];
		const recentFailed = await reservationWith(23, "failed");
		const oldConfirmed = await reservationWith(25, "confirmed");
		const oldCanceled = await reservationWith(25, "confirmed", true);
		const oldPending = await reservationWith(25, null);
		reservations.keysPurgedAt = 0;
		await reservations.reconcileCheckouts();
		for (const id of oldFailed) {
			expect(await findCheckout(id)).toBeNull();
			expect(await reservations.side.reservations.findById(id)).toBeNull();
			expect(await reservations.side.reservation_states.findById(`${id}:outcome`)).toBeNull();
		}
		expect(await findCheckout(recentFailed)).toMatchObject({ status: "failed" });
		expect(await findCheckout(oldConfirmed)).toMatchObject({ status: "confirmed" });
		expect(await findCheckout(oldCanceled)).toMatchObject({ status: "canceled" });
		expect(await findCheckout(oldPending)).toMatchObject({ status: "pending" });
	});
});
