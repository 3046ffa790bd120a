/**
 * `reservations` owns the reservations store: who booked how many seats for which show.
 *
 * A reservation's `_id` is its checkout id, so creating it twice for one checkout is impossible on
 * every store (the primary key is unique): a retried or duplicated step finds the first one.
 *
 * Nothing here is ever updated in place; every fact is inserted once (FerretDB 1.24 runs an update
 * as a scan of the whole collection, which would make each booking slower than the last):
 * - `reservations`: the booking as asked for (show, name, guests), written when the checkout starts;
 * - `reservation_states`: `<id>:outcome` (confirmed or failed) and `<id>:canceled`. A unique key
 *   per fact means the first writer decides and a repeat changes nothing, on every store;
 * - `open_checkouts` and `seat_releases`: small to-do lists, removed when done, that the
 *   reconciler reads instead of scanning every reservation.
 * A reservation's status is derived: canceled, else its outcome, else pending.
 *
 * A reconciler on every instance finishes what a dead orchestrator left: checkouts still open after
 * a hold can live are confirmed if their seats were sold, else failed and released; canceled
 * reservations whose seats were not yet given back are released again until that succeeds.
 */
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { appConfig } from "../moleculer.config";
import {
	createDbMixin,
	defaultStoreSettings,
	type DbMethods,
	type SideCollection,
	type StoreAdapter
} from "../mixins/db.mixin";
import {
	checkoutFailed,
	idempotencyKeyReused,
	notCancelable,
	reservationNotFound
} from "../lib/errors";
import { atMostChars } from "../lib/text";
import { claimKey, purgeExpiredKeys, type IdempotencyKeyDoc } from "../lib/idempotency-keys";
import type { HoldState, Reservation, ReservationDoc } from "../lib/types";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import {
	createReservationFacts,
	toPublicReservation,
	type BookingDoc,
	type ReservationFacts,
	type StateDoc,
	type TodoDoc
} from "../lib/reservation-facts";

interface ReservationsSettings extends ServiceSettingSchema {
	holdTtlSeconds: number;
	sweepIntervalMs: number;
	/** Extra wait past a hold's deadline before a pending checkout counts as abandoned. */
	reconcileGraceMs: number;
	idempotencyKeyHours: number;
	store: ReturnType<typeof defaultStoreSettings>;
}

interface ReservationsMethods extends DbMethods, MetricsMethods {
	releaseCanceledSeats(id: string, showID: string, ctx?: Context): Promise<void>;
	reconcileCheckouts(): Promise<void>;
	reconcilePending(id: string, showID: string): Promise<void>;
}

interface ReservationsLocals {
	adapter: StoreAdapter;
	side: Record<
		| "reservations"
		| "reservation_states"
		| "open_checkouts"
		| "seat_releases"
		| "idempotency_keys",
		SideCollection
	>;
	/** When expired Idempotency-Key records were last removed. */
	keysPurgedAt: number;
	facts: ReservationFacts;
	reconcileTimer: NodeJS.Timeout | null;
}

const CANCELLATIONS = "tickets_cancellations_total";
const RECONCILED = "tickets_checkouts_reconciled_total";
/** A release listed this long ago whose cancel was never recorded belongs to a cancel that died. */
const UNFINISHED_CANCEL_MS = 60 * 1000;
/** To-do entries the reconciler takes on per round. */
const RECONCILE_BATCH = 500;

const HOUR_MS = 60 * 60 * 1000;
/** How often expired Idempotency-Key records are looked for (a scan of their collection). */
const KEY_PURGE_INTERVAL_MS = 10 * 60 * 1000;

const RESERVATION_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{8,64}$/ } as const;
const SHOW_ID = { type: "string", pattern: /^[0-9a-fA-F]{24}$/ } as const;

const ReservationsService: ServiceSchema<
	ReservationsSettings,
	ReservationsMethods,
	ReservationsLocals
> = {
	name: "reservations",

	mixins: [
		createDbMixin({
			database: "reservations",
			collection: "reservations",
			indexes: [{ fields: { showID: 1 } }],
			sideCollections: [
				"reservation_states",
				"open_checkouts",
				"seat_releases",
				"idempotency_keys"
			]
		}),
		createMetricsMixin([
			{ name: CANCELLATIONS, description: "Reservations canceled" },
			{
				name: RECONCILED,
				description: "Abandoned checkouts settled by the reconciler, by result",
				labelNames: ["result"]
			}
		])
	],

	settings: {
		holdTtlSeconds: appConfig.holdTtlSeconds,
		sweepIntervalMs: appConfig.sweepIntervalMs,
		reconcileGraceMs: appConfig.reconcileGraceMs,
		idempotencyKeyHours: appConfig.idempotencyKeyHours,
		store: defaultStoreSettings(),
		$secureSettings: ["store"]
	},

	actions: {
		/**
		 * Records a checkout's reservation as pending. Idempotent by checkout id: a second call
		 * returns the first reservation, or refuses if it asked for something else.
		 */
		create: {
			params: {
				checkoutId: RESERVATION_ID,
				showID: SHOW_ID,
				name: { type: "string", min: 1, custom: atMostChars(100) },
				guests: { type: "number", integer: true, min: 1, max: 100000 },
				fingerprint: { type: "string", min: 1, max: 128 }
			},
			async handler(
				ctx: Context<{
					checkoutId: string;
					showID: string;
					name: string;
					guests: number;
					fingerprint: string;
				}>
			): Promise<ReservationDoc & { created: boolean }> {
				const { checkoutId, showID, name, guests, fingerprint } = ctx.params;
				const now = Date.now();
				// On the reconciler's list first: a crash right after still gets settled.
				await this.side.open_checkouts.insertOnce({ _id: checkoutId, showID, at: now });
				const booking: BookingDoc = {
					_id: checkoutId,
					showID,
					name,
					guests,
					fingerprint,
					createdAt: now
				};
				if (await this.side.reservations.insertOnce({ ...booking })) {
					this.facts.remember(`booking:${checkoutId}`, booking);
					return { ...booking, status: "pending", updatedAt: now, created: true };
				}
				const existing = await this.facts.findReservation(checkoutId);
				if (!existing) throw reservationNotFound(checkoutId);
				if (existing.fingerprint !== fingerprint) throw idempotencyKeyReused();
				return { ...existing, created: false };
			}
		},

		/**
		 * The checkout an Idempotency-Key names (lib/idempotency-keys.ts): this request's new one
		 * if the key is new, else the first request's. `legacyId` is the id older versions derived
		 * from the key, so that their bookings still replay.
		 */
		claimIdempotencyKey: {
			params: {
				keyHash: { type: "string", pattern: /^[0-9a-f]{64}$/ },
				checkoutId: RESERVATION_ID,
				fingerprint: { type: "string", min: 1, max: 128 },
				legacyId: RESERVATION_ID
			},
			handler(
				ctx: Context<{
					keyHash: string;
					checkoutId: string;
					fingerprint: string;
					legacyId: string;
				}>
			): Promise<IdempotencyKeyDoc & { created: boolean }> {
				const { keyHash, checkoutId, fingerprint, legacyId } = ctx.params;
				return claimKey(
					this.side.idempotency_keys,
					{ _id: keyHash, checkoutId, fingerprint, createdAt: Date.now() },
					() => this.facts.findBooking(legacyId),
					this.settings.idempotencyKeyHours * HOUR_MS
				);
			}
		},

		/** The stored reservation of a checkout, or null: lets the gateway replay or resume it. */
		findCheckout: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<ReservationDoc | null> {
				return this.facts.findReservation(ctx.params.id);
			}
		},

		get: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const doc = await this.facts.findReservation(ctx.params.id);
				if (!doc) throw reservationNotFound(ctx.params.id);
				return toPublicReservation(doc);
			}
		},

		/** pending → confirmed, once the seats are sold. Repeating it changes nothing. */
		confirm: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const { id } = ctx.params;
				const outcome = await this.facts.recordOutcome(id, "confirmed");
				if (outcome.status === "failed") throw checkoutFailed(id);
				const booking = await this.facts.findBooking(id);
				if (!booking) throw reservationNotFound(id);
				const confirmed = toPublicReservation({
					...booking,
					status: "confirmed",
					updatedAt: outcome.at
				});
				if (outcome.recorded) ctx.emit("reservations.confirmed", confirmed);
				return confirmed;
			}
		},

		/** pending → failed, when the checkout could not get or keep its seats. */
		fail: {
			params: { id: RESERVATION_ID, reason: { type: "string", max: 200 } },
			async handler(ctx: Context<{ id: string; reason: string }>): Promise<Reservation> {
				const { id, reason } = ctx.params;
				await this.facts.recordOutcome(id, "failed", reason);
				const doc = await this.facts.findReservation(id);
				if (!doc) throw reservationNotFound(id);
				return toPublicReservation(doc);
			}
		},

		/**
		 * confirmed → canceled, and the seats go back to the show exactly once: the release is
		 * keyed by the checkout id, and repeated by the reconciler until it succeeds.
		 */
		cancel: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const { id } = ctx.params;
				const [booking, outcome] = await Promise.all([
					this.facts.findBooking(id),
					this.facts.findFact(`${id}:outcome`)
				]);
				if (!booking) throw reservationNotFound(id);
				if (outcome?.status !== "confirmed")
					throw notCancelable(id, outcome?.status ?? "pending");
				const now = Date.now();
				// The release goes on the to-do list before the cancel is recorded, so that a
				// crash in between can never leave canceled seats counted. A repeated cancel lists
				// it again; releasing a hold twice changes nothing.
				await this.side.seat_releases.insertOnce({
					_id: id,
					showID: booking.showID,
					at: now
				});
				// Inserted, not looked up first: an earlier cancel shows as a duplicate key, which
				// spares FerretDB its slow search for a document that is not there.
				const fact: StateDoc = {
					_id: `${id}:canceled`,
					reservation: id,
					status: "canceled",
					at: now
				};
				const canceled = await this.side.reservation_states.insertOnce({ ...fact });
				const recorded = canceled ? fact : ((await this.facts.findFact(fact._id)) ?? fact);
				this.facts.remember(`fact:${fact._id}`, recorded);
				const reservation = toPublicReservation({
					...booking,
					status: "canceled",
					updatedAt: recorded.at
				});
				if (canceled) {
					this.countMetric(CANCELLATIONS);
					ctx.emit("reservations.canceled", reservation);
				}
				// The cancel is recorded; if the release fails now, the reconciler repeats it.
				await this.releaseCanceledSeats(id, booking.showID, ctx).catch(err =>
					this.logger.warn(
						`Seats of canceled reservation ${id} not released yet, will retry: ${(err as Error).message}`
					)
				);
				return reservation;
			}
		},

		/** Operators: the reservations of one show, newest first. */
		listByShow: {
			params: { showID: SHOW_ID },
			async handler(ctx: Context<{ showID: string }>): Promise<Reservation[]> {
				const bookings: BookingDoc[] = await this.adapter.find({
					query: { showID: ctx.params.showID },
					sort: ["-createdAt"]
				});
				const docs = await Promise.all(
					bookings.map(b => this.facts.findReservation(String(b._id)))
				);
				return docs.flatMap(doc => (doc ? [toPublicReservation(doc)] : []));
			}
		}
	},

	methods: {
		/**
		 * Gives a canceled reservation's seats back, then takes it off the reconciler's to-do list:
		 * for a cancel (`ctx`) later and with others, not waited for (an entry left behind is
		 * released again by the reconciler, a no-op); for the reconciler at once.
		 */
		async releaseCanceledSeats(id: string, showID: string, ctx?: Context): Promise<void> {
			// Through the cancel's context when there is one: the show's new seats come back in
			// its meta to the gateway (see shows.releaseSeats).
			await (ctx ?? this.broker).call("shows.releaseSeats", { showID, holdId: id });
			if (!ctx) return this.side.seat_releases.removeById(id);
			this.side.seat_releases
				.removeLater(id)
				.catch(err => this.logger.warn(`Seat release ${id} stays listed: ${err.message}`));
		},

		/**
		 * A checkout whose orchestrator vanished: settle it by where its seats stand. Releasing
		 * with `onlyIfHeld` both frees seats that were only held (past their deadline, they can no
		 * longer be confirmed) and reports seats that were sold, in one serialised step.
		 */
		async reconcilePending(id: string, showID: string): Promise<void> {
			const { state } = await this.broker.call<{ state: HoldState }, object>(
				"shows.releaseSeats",
				{ showID, holdId: id, onlyIfHeld: true }
			);
			if (state === "confirmed") {
				await this.broker.call("reservations.confirm", { id });
				this.countMetric(RECONCILED, { result: "confirmed" });
				this.logger.info(`Reconciled checkout ${id}: seats were sold, confirmed`);
				return;
			}
			await this.facts.recordOutcome(id, "failed", `abandoned (${state})`);
			this.countMetric(RECONCILED, { result: "failed" });
			this.logger.info(`Reconciled checkout ${id}: seats ${state}, marked failed`);
		},

		async reconcileCheckouts(): Promise<void> {
			if (Date.now() - this.keysPurgedAt > KEY_PURGE_INTERVAL_MS) {
				this.keysPurgedAt = Date.now();
				await purgeExpiredKeys(
					this.side.idempotency_keys,
					this.settings.idempotencyKeyHours * HOUR_MS,
					RECONCILE_BATCH
				);
			}
			const abandonedBefore =
				Date.now() - this.settings.holdTtlSeconds * 1000 - this.settings.reconcileGraceMs;
			const open = await this.side.open_checkouts.find<TodoDoc>({}, RECONCILE_BATCH);
			for (const checkout of open.filter(c => c.at < abandonedBefore)) {
				const decided = await this.side.reservation_states.findById(
					`${checkout._id}:outcome`
				);
				if (decided) await this.side.open_checkouts.removeById(checkout._id);
				else await this.reconcilePending(checkout._id, checkout.showID);
			}
			const releases = await this.side.seat_releases.find<TodoDoc>({}, RECONCILE_BATCH);
			for (const release of releases) {
				const canceled = await this.side.reservation_states.findById(
					`${release._id}:canceled`
				);
				if (canceled) await this.releaseCanceledSeats(release._id, release.showID);
				// A cancel that died between listing its release and recording itself did not
				// happen: the reservation stands, and its seats stay sold.
				else if (release.at < Date.now() - UNFINISHED_CANCEL_MS)
					await this.side.seat_releases.removeById(release._id);
			}
		}
	},

	created() {
		this.reconcileTimer = null;
		this.keysPurgedAt = 0;
		this.facts = createReservationFacts(
			() => ({
				bookings: this.side.reservations,
				states: this.side.reservation_states,
				openCheckouts: this.side.open_checkouts,
				seatReleases: this.side.seat_releases
			}),
			this.logger
		);
	},

	started() {
		this.reconcileTimer = setInterval(() => {
			this.reconcileCheckouts().catch(err =>
				this.logger.warn(`Reconciliation failed, will retry: ${(err as Error).message}`)
			);
		}, this.settings.sweepIntervalMs);
		this.reconcileTimer.unref();
	},

	stopped() {
		if (this.reconcileTimer) clearInterval(this.reconcileTimer);
	}
};

export default ReservationsService;
