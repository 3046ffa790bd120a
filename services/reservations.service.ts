/**
 * `reservations` owns the reservations store: who booked how many seats for which show.
 *
 * A reservation's `_id` is its checkout id, so creating it twice for one checkout is impossible on
 * every store (the primary key is unique): a retried or duplicated step finds the first one.
 * Nothing is updated in place: a reservation is insert-only facts (lib/reservations/reservation-facts.ts). A
 * reconciler on every instance finishes what a dead orchestrator left (lib/checkout/checkout-reconciler.ts).
 */
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { appConfig } from "../lib/common/config";
import { createDbMixin, defaultStoreSettings } from "../mixins/db.mixin";
import type { DbMethods, StoreAdapter } from "../lib/store/store-api";
import {
	checkoutFailed,
	idempotencyKeyReused,
	notCancelable,
	reservationNotFound
} from "../lib/common/errors";
import { plainText } from "../lib/common/text";
import { claimKey, keyWindowMs, type IdempotencyKeyDoc } from "../lib/checkout/idempotency-keys";
import type { Reservation, ReservationDoc } from "../lib/common/types";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import {
	createReservationFacts,
	toPublicReservation,
	type BookingDoc,
	type FactCollections,
	type ReservationFacts
} from "../lib/reservations/reservation-facts";
import {
	reconcileCheckouts,
	listSeatRelease,
	releaseSeatsOrLeaveListed,
	startReconciler,
	RECONCILED_COUNTER,
	type ReconcilerHost,
	type ReconcilerSettings
} from "../lib/checkout/checkout-reconciler";

interface ReservationsSettings extends ServiceSettingSchema, ReconcilerSettings {
	sweepIntervalMs: number;
	store: ReturnType<typeof defaultStoreSettings>;
}

interface ReservationsMethods extends DbMethods, MetricsMethods {
	reconcileCheckouts(): Promise<void>;
}

interface ReservationsLocals extends Pick<ReconcilerHost, "keysPurgedAt"> {
	adapter: StoreAdapter;
	side: ReconcilerHost["side"] & FactCollections;
	facts: ReservationFacts;
	reconcileTimer: NodeJS.Timeout | null;
}

const CANCELLATIONS = "tickets_cancellations_total";

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
			],
			// The reconciler's purges of expired keys and failed checkouts.
			sideIndexes: { idempotency_keys: ["createdAt"], reservation_states: ["status"] }
		}),
		createMetricsMixin([
			{ name: CANCELLATIONS, description: "Reservations canceled" },
			RECONCILED_COUNTER
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
				name: { type: "string", min: 1, custom: plainText(100) },
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
		 * The checkout an Idempotency-Key names (lib/checkout/idempotency-keys.ts): this request's new one
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
					keyWindowMs(this.settings.idempotencyKeyHours)
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

		/** Takes back the pending reservation of a checkout refused before it held a seat. */
		discard: {
			params: { id: RESERVATION_ID },
			handler(ctx: Context<{ id: string }>): Promise<boolean> {
				return this.facts.discard(ctx.params.id);
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
				// Listed before the cancel is recorded, released after it: see checkout-reconciler.
				await listSeatRelease(this, id, booking.showID, now);
				const canceled = await this.facts.recordCancel(id, now);
				const reservation = toPublicReservation({
					...booking,
					status: "canceled",
					updatedAt: canceled.at
				});
				if (canceled.recorded) {
					this.countMetric(CANCELLATIONS);
					ctx.emit("reservations.canceled", reservation);
				}
				await releaseSeatsOrLeaveListed(this, id, booking.showID, ctx);
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
		/** One reconciler round now (the timer from `started` runs them every sweep interval). */
		reconcileCheckouts(): Promise<void> {
			return reconcileCheckouts(this);
		}
	},

	created() {
		this.reconcileTimer = null;
		this.keysPurgedAt = 0;
		this.facts = createReservationFacts(() => this.side, this.logger);
	},

	started() {
		this.reconcileTimer = startReconciler(this, this.settings.sweepIntervalMs);
	},

	stopped() {
		if (this.reconcileTimer) clearInterval(this.reconcileTimer);
	}
};

export default ReservationsService;
