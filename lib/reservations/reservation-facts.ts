/**
 * A reservation as insert-only facts, and how it is read back. Nothing is updated in place
 * (FerretDB 1.24 runs an update as a scan of the whole collection):
 * - `reservations`: the booking as asked for (show, name, guests), written when the checkout starts;
 * - `reservation_states`: `<id>:outcome` (confirmed or failed) and `<id>:canceled`. A unique key
 *   per fact means the first writer decides and a repeat changes nothing, on every store;
 * - `open_checkouts` and `seat_releases`: small to-do lists, removed when done, that the
 *   reconciler reads instead of scanning every reservation.
 * A reservation's status is derived: canceled, else its outcome, else pending.
 * What never held a seat is not kept: a checkout refused before its hold is taken back at once, and
 * a failed one goes once the Idempotency-Key window is over (no key can name it any more).
 */
import type { SideCollection } from "../store/store-api";
import type { Reservation, ReservationDoc } from "../common/types";

/** The booking as asked for; written once. */
export interface BookingDoc {
	_id: string;
	showID: string;
	name: string;
	guests: number;
	/** Hash of what was asked for, to tell a replay from a reuse of an Idempotency-Key. */
	fingerprint: string;
	createdAt: number;
}

/** One fact about a reservation: `<id>:outcome` or `<id>:canceled`. */
interface StateDoc {
	_id: string;
	reservation: string;
	status: "confirmed" | "failed" | "canceled";
	at: number;
	reason?: string;
}

/** An entry of a to-do list (`open_checkouts`, `seat_releases`). */
export interface TodoDoc {
	_id: string;
	showID: string;
	at: number;
}

/** The service's collections, by name. */
export type FactCollections = Record<
	"reservations" | "reservation_states" | "open_checkouts" | "seat_releases",
	SideCollection
>;

export interface ReservationFacts {
	/** A booking with its status, from its facts: canceled, else its outcome, else pending. */
	findReservation(id: string): Promise<ReservationDoc | null>;
	findBooking(id: string): Promise<BookingDoc | null>;
	findFact(factId: string): Promise<StateDoc | null>;
	/** Keeps a booking or fact this node has written or read (they never change). */
	remember(key: string, value: unknown): void;
	/**
	 * Decides a checkout: the first outcome recorded stands, and a later call learns it. Then
	 * takes the checkout off the reconciler's list.
	 */
	recordOutcome(
		id: string,
		status: "confirmed" | "failed",
		reason?: string
	): Promise<StateDoc & { recorded: boolean }>;
	/** Records a cancel at `at`: the first one stands, and a later call learns it. */
	recordCancel(id: string, at: number): Promise<StateDoc & { recorded: boolean }>;
	/** Takes back a checkout that has no outcome (it was refused); false if it has one. */
	discard(id: string): Promise<boolean>;
	/** Removes up to `batch` failed checkouts decided before `before`; returns how many went. */
	purgeFailed(before: number, batch: number): Promise<number>;
}

/** Bookings and facts a node keeps in memory (a few MB). */
const REMEMBERED_MAX = 20000;

export function toPublicReservation(doc: ReservationDoc): Reservation {
	return {
		_id: doc._id,
		showID: doc.showID,
		name: doc.name,
		guests: doc.guests,
		status: doc.status,
		createdAt: doc.createdAt,
		updatedAt: doc.updatedAt
	};
}

/** `collections` is asked each time: the store's collections open after the service is created. */
export function createReservationFacts(
	collections: () => FactCollections,
	logger: { warn(message: string): void }
): ReservationFacts {
	/** Bookings and facts seen by this node, oldest first. */
	const remembered = new Map<string, unknown>();

	const remember = (key: string, value: unknown) => {
		remembered.set(key, value);
		if (remembered.size > REMEMBERED_MAX)
			remembered.delete(remembered.keys().next().value as string);
	};

	/** Read from the store once per node. (That a fact is missing is never kept: it may come.) */
	async function recall<T>(key: string, load: () => Promise<T | null>): Promise<T | null> {
		const known = remembered.get(key) as T | undefined;
		if (known) return known;
		const value = await load();
		if (value) remember(key, value);
		return value;
	}

	const facts: ReservationFacts = {
		async findReservation(id) {
			const [booking, outcome, canceled] = await Promise.all([
				facts.findBooking(id),
				facts.findFact(`${id}:outcome`),
				facts.findFact(`${id}:canceled`)
			]);
			if (!booking) return null;
			const release = canceled
				? await collections().seat_releases.findById<TodoDoc>(id)
				: null;
			return {
				...booking,
				status: canceled ? "canceled" : (outcome?.status ?? "pending"),
				updatedAt: Math.max(booking.createdAt, outcome?.at ?? 0, canceled?.at ?? 0),
				...(outcome?.reason ? { failReason: outcome.reason } : {}),
				...(canceled ? { seatsReleased: !release } : {})
			};
		},

		findBooking: id =>
			recall(`booking:${id}`, () => collections().reservations.findById<BookingDoc>(id)),

		findFact: factId =>
			recall(`fact:${factId}`, () =>
				collections().reservation_states.findById<StateDoc>(factId)
			),

		remember,

		async recordOutcome(id, status, reason) {
			const fact: StateDoc = {
				_id: `${id}:outcome`,
				reservation: id,
				status,
				at: Date.now(),
				...(reason ? { reason } : {})
			};
			const recorded = await collections().reservation_states.insertOnce({ ...fact });
			const outcome = recorded ? fact : ((await facts.findFact(fact._id)) as StateDoc);
			remember(`fact:${fact._id}`, outcome);
			// Not waited for: the outcome is recorded, and the reconciler removes a decided
			// checkout it still finds on its list.
			collections()
				.open_checkouts.removeLater(id)
				.catch(err => logger.warn(`Open checkout ${id} stays listed: ${err.message}`));
			return { ...outcome, recorded };
		},

		async discard(id) {
			if (await facts.findFact(`${id}:outcome`)) return false;
			// The booking first: a to-do entry left without it is failed by the reconciler, and
			// that outcome purged later; a booking left without its entry would stay pending.
			await collections().reservations.removeById(id);
			remembered.delete(`booking:${id}`);
			await collections().open_checkouts.removeById(id);
			return true;
		},

		async purgeFailed(before, batch) {
			const failed = await collections().reservation_states.find<StateDoc>(
				{ status: "failed", at: { $lt: before } },
				batch
			);
			// Together, so that group commit removes them in one store write per collection.
			await Promise.all(
				failed.map(f => collections().reservations.removeById(f.reservation))
			);
			await Promise.all(failed.map(f => collections().reservation_states.removeById(f._id)));
			for (const f of failed) {
				remembered.delete(`booking:${f.reservation}`);
				remembered.delete(`fact:${f._id}`);
			}
			return failed.length;
		},

		async recordCancel(id, at) {
			// Inserted, not looked up first: an earlier cancel shows as a duplicate key, which
			// spares FerretDB its slow search for a document that is not there.
			const fact: StateDoc = {
				_id: `${id}:canceled`,
				reservation: id,
				status: "canceled",
				at
			};
			const recorded = await collections().reservation_states.insertOnce({ ...fact });
			const canceled = recorded ? fact : ((await facts.findFact(fact._id)) ?? fact);
			remember(`fact:${fact._id}`, canceled);
			return { ...canceled, recorded };
		}
	};
	return facts;
}
