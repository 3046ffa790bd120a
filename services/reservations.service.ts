/**
 * `reservations` owns the reservations store: who booked how many seats for which show.
 *
 * A reservation's `_id` is its checkout id, so creating it twice for one checkout is impossible on
 * every store (the primary key is unique): a retried or duplicated step finds the first one.
 * Its status moves pending → confirmed | failed, and confirmed → canceled; each move is a
 * conditional update from the expected status, so a repeated step changes nothing.
 *
 * A reconciler on every instance finishes what a dead orchestrator left: pending checkouts older
 * than a hold can live are confirmed if their seats were sold, else failed and released; canceled
 * reservations whose seats were not yet given back are released again until that succeeds.
 */
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { appConfig } from "../moleculer.config";
import {
	createDbMixin,
	defaultStoreSettings,
	type DbMethods,
	type StoreAdapter
} from "../mixins/db.mixin";
import {
	checkoutFailed,
	idempotencyKeyReused,
	notCancelable,
	reservationNotFound
} from "../lib/errors";
import { atMostChars } from "../lib/text";
import type { HoldState, Reservation, ReservationStatus } from "../lib/types";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";

export interface ReservationDoc extends Reservation {
	/** Hash of what was asked for, to tell a replay from a reuse of an Idempotency-Key. */
	fingerprint: string;
	/** For a canceled reservation: whether its seats are back on sale yet. */
	seatsReleased?: boolean;
	failReason?: string;
}

interface ReservationsSettings extends ServiceSettingSchema {
	holdTtlSeconds: number;
	sweepIntervalMs: number;
	/** Extra wait past a hold's deadline before a pending checkout counts as abandoned. */
	reconcileGraceMs: number;
	store: ReturnType<typeof defaultStoreSettings>;
}

interface ReservationsMethods extends DbMethods, MetricsMethods {
	findReservation(id: string): Promise<ReservationDoc | null>;
	moveStatus(
		id: string,
		from: ReservationStatus,
		to: ReservationStatus,
		extra?: Partial<ReservationDoc>
	): Promise<boolean>;
	releaseCanceledSeats(reservation: ReservationDoc): Promise<boolean>;
	reconcileCheckouts(): Promise<void>;
	reconcilePending(reservation: ReservationDoc): Promise<void>;
}

interface ReservationsLocals {
	adapter: StoreAdapter;
	reconcileTimer: NodeJS.Timeout | null;
}

const CANCELLATIONS = "tickets_cancellations_total";
const RECONCILED = "tickets_checkouts_reconciled_total";

const RESERVATION_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{8,64}$/ } as const;
const SHOW_ID = { type: "string", pattern: /^[0-9a-fA-F]{24}$/ } as const;

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
			indexes: [{ fields: { showID: 1 } }, { fields: { status: 1 } }]
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
				const doc: ReservationDoc = {
					_id: checkoutId,
					showID,
					name,
					guests,
					status: "pending",
					fingerprint,
					createdAt: now,
					updatedAt: now
				};
				try {
					await this.adapter.insert({ ...doc });
					return { ...doc, created: true };
				} catch (err) {
					if (!this.isDuplicateKey(err)) throw err;
				}
				const existing = await this.findReservation(checkoutId);
				if (!existing) throw reservationNotFound(checkoutId);
				if (existing.fingerprint !== fingerprint) throw idempotencyKeyReused();
				return { ...existing, created: false };
			}
		},

		/** The stored reservation of a checkout, or null: lets the gateway replay or resume it. */
		findCheckout: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<ReservationDoc | null> {
				return this.findReservation(ctx.params.id);
			}
		},

		get: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const doc = await this.findReservation(ctx.params.id);
				if (!doc) throw reservationNotFound(ctx.params.id);
				return toPublicReservation(doc);
			}
		},

		/** pending → confirmed, once the seats are sold. Repeating it changes nothing. */
		confirm: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const { id } = ctx.params;
				if (await this.moveStatus(id, "pending", "confirmed")) {
					const doc = (await this.findReservation(id)) as ReservationDoc;
					ctx.emit("reservations.confirmed", toPublicReservation(doc));
					return toPublicReservation(doc);
				}
				const doc = await this.findReservation(id);
				if (!doc) throw reservationNotFound(id);
				if (doc.status === "failed") throw checkoutFailed(id);
				return toPublicReservation(doc);
			}
		},

		/** pending → failed, when the checkout could not get or keep its seats. */
		fail: {
			params: { id: RESERVATION_ID, reason: { type: "string", max: 200 } },
			async handler(ctx: Context<{ id: string; reason: string }>): Promise<Reservation> {
				const { id, reason } = ctx.params;
				await this.moveStatus(id, "pending", "failed", { failReason: reason });
				const doc = await this.findReservation(id);
				if (!doc) throw reservationNotFound(id);
				return toPublicReservation(doc);
			}
		},

		/**
		 * confirmed → canceled, and the seats go back to the show exactly once: the release is
		 * keyed by the checkout id, and retried by the reconciler until it succeeds.
		 */
		cancel: {
			params: { id: RESERVATION_ID },
			async handler(ctx: Context<{ id: string }>): Promise<Reservation> {
				const { id } = ctx.params;
				const moved = await this.moveStatus(id, "confirmed", "canceled", {
					seatsReleased: false
				});
				const doc = await this.findReservation(id);
				if (!doc) throw reservationNotFound(id);
				if (doc.status !== "canceled") throw notCancelable(id, doc.status);
				if (moved) {
					this.countMetric(CANCELLATIONS);
					ctx.emit("reservations.canceled", toPublicReservation(doc));
				}
				if (!doc.seatsReleased) {
					// The cancel is recorded; if the release fails now, the reconciler repeats it.
					await this.releaseCanceledSeats(doc).catch(err =>
						this.logger.warn(
							`Seats of canceled reservation ${id} not released yet, will retry: ${(err as Error).message}`
						)
					);
				}
				return toPublicReservation(doc);
			}
		},

		/** Operators: the reservations of one show, newest first. */
		listByShow: {
			params: { showID: SHOW_ID },
			async handler(ctx: Context<{ showID: string }>): Promise<Reservation[]> {
				const docs: ReservationDoc[] = await this.adapter.find({
					query: { showID: ctx.params.showID },
					sort: ["-createdAt"]
				});
				return docs.map(doc => toPublicReservation(this.toPlain<ReservationDoc>(doc)));
			}
		}
	},

	methods: {
		async findReservation(id: string): Promise<ReservationDoc | null> {
			const doc = await this.adapter.findById(id);
			return doc ? this.toPlain<ReservationDoc>(doc) : null;
		},

		/** A status change that happens only from `from`: repeats and races change nothing. */
		async moveStatus(
			id: string,
			from: ReservationStatus,
			to: ReservationStatus,
			extra: Partial<ReservationDoc> = {}
		): Promise<boolean> {
			const written = await this.adapter.updateMany(
				{ _id: id, status: from },
				{ $set: { ...extra, status: to, updatedAt: Date.now() } }
			);
			return written === 1;
		},

		async releaseCanceledSeats(reservation: ReservationDoc): Promise<boolean> {
			await this.broker.call("shows.releaseSeats", {
				showID: reservation.showID,
				holdId: reservation._id
			});
			await this.adapter.updateMany(
				{ _id: reservation._id, status: "canceled" },
				{ $set: { seatsReleased: true, updatedAt: Date.now() } }
			);
			return true;
		},

		/**
		 * A checkout whose orchestrator vanished: settle it by where its seats stand. Releasing
		 * with `onlyIfHeld` both frees seats that were only held (past their deadline, they can no
		 * longer be confirmed) and reports seats that were sold, in one serialised step.
		 */
		async reconcilePending(reservation: ReservationDoc): Promise<void> {
			const id = reservation._id;
			const { state } = await this.broker.call<{ state: HoldState }, object>(
				"shows.releaseSeats",
				{ showID: reservation.showID, holdId: id, onlyIfHeld: true }
			);
			if (state === "confirmed") {
				await this.broker.call("reservations.confirm", { id });
				this.countMetric(RECONCILED, { result: "confirmed" });
				this.logger.info(`Reconciled checkout ${id}: seats were sold, confirmed`);
				return;
			}
			await this.moveStatus(id, "pending", "failed", { failReason: `abandoned (${state})` });
			this.countMetric(RECONCILED, { result: "failed" });
			this.logger.info(`Reconciled checkout ${id}: seats ${state}, marked failed`);
		},

		async reconcileCheckouts(): Promise<void> {
			const abandonedBefore =
				Date.now() - this.settings.holdTtlSeconds * 1000 - this.settings.reconcileGraceMs;
			const pending: ReservationDoc[] = await this.adapter.find({
				query: { status: "pending", createdAt: { $lt: abandonedBefore } },
				limit: 100
			});
			for (const doc of pending) await this.reconcilePending(this.toPlain(doc));

			const unreleased: ReservationDoc[] = await this.adapter.find({
				query: { status: "canceled", seatsReleased: false },
				limit: 100
			});
			for (const doc of unreleased) await this.releaseCanceledSeats(this.toPlain(doc));
		}
	},

	created() {
		this.reconcileTimer = null;
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
