/**
 * `shows` owns the shows store: the houses, and the seats held or sold in them.
 *
 * A show's document holds only what a write needs: house size, counters, and the checkouts in
 * flight. Sold seats are a counter in it and one insert-once record per checkout beside it
 * (`show_sales`, `show_releases`), so the document does not grow with sales. See lib/shows/show-seats.ts
 * for how a checkout's seats move through the document and out of it.
 *
 * Every write to a show goes to one node (the `Shard` strategy keyed by show id) and is serialised
 * there per show; changes that arrive meanwhile are applied together and stored in one write (group
 * commit). Each write carries a version check, and on MongoDB-wire stores a unique-insert claim of
 * the new version, as a second guard. See README "Seat safety". The store access is
 * lib/shows/show-store.ts; the operators' actions are lib/shows/show-operations.ts.
 */
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { appConfig } from "../lib/common/config";
import { createDbMixin, defaultStoreSettings } from "../mixins/db.mixin";
import type { DbMethods, SideCollection, StoreAdapter } from "../lib/store/store-api";
import { releaseHold, sellHold, takeHold, type StepDeadline } from "../lib/shows/seat-changes";
import type { ShowWriter } from "../lib/shows/show-writer";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import { toPublicShow, toShowState } from "../lib/shows/show-seats";
import {
	BY_SHOW,
	createStoreWriter,
	dueShowIds,
	findHoldState,
	findShows,
	loadShow,
	migrateShows,
	seedShows,
	SHOW_ID
} from "../lib/shows/show-store";
import { operatorActions } from "../lib/shows/show-operations";
import {
	changeListenerEvents,
	createChangeListeners,
	type ChangeListeners
} from "../lib/shows/change-listeners";
import type { HoldState, HoldView, PublicShow, ShowState } from "../lib/common/types";

export { SEED_SHOWS } from "../lib/shows/show-store";

interface ShowsSettings extends ServiceSettingSchema {
	holdTtlSeconds: number;
	sweepIntervalMs: number;
	clockSkewMs: number;
	store: ReturnType<typeof defaultStoreSettings>;
}

interface ShowsMethods extends DbMethods, MetricsMethods {
	answerShowState(ctx: Context<unknown, { showState?: ShowState }>, showID: string): void;
	sweepExpiredHolds(): Promise<void>;
	stepDeadline(ctx: Context<unknown, { deadline?: unknown }>): StepDeadline;
}

interface ShowsLocals {
	adapter: StoreAdapter;
	side: Record<"show_sales" | "show_releases", SideCollection>;
	writer: ShowWriter;
	changeListeners: ChangeListeners;
	sweepTimer: NodeJS.Timeout | null;
}

const HOLD_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{8,64}$/ } as const;
const SEATS_HELD = "tickets_seats_held_total";
const SEATS_SOLD = "tickets_seats_sold_total";
const SEATS_RELEASED = "tickets_seats_released_total";
const HOLDS_EXPIRED = "tickets_holds_expired_total";

const ShowsService: ServiceSchema<ShowsSettings, ShowsMethods, ShowsLocals> = {
	name: "shows",

	mixins: [
		createDbMixin({
			database: "shows",
			collection: "shows",
			indexes: [{ fields: { nextExpiry: 1 } }],
			sideCollections: ["show_sales", "show_releases"],
			sideIndexes: { show_sales: ["showID"], show_releases: ["showID"] },
			seed: seedShows
		}),
		createMetricsMixin([
			{ name: SEATS_HELD, description: "Seats put on hold by checkouts" },
			{ name: SEATS_SOLD, description: "Seats sold: holds confirmed by checkouts" },
			{ name: SEATS_RELEASED, description: "Seats given back by cancels and compensations" },
			{ name: HOLDS_EXPIRED, description: "Unconfirmed holds that ran out of time" }
		])
	],

	settings: {
		holdTtlSeconds: appConfig.holdTtlSeconds,
		sweepIntervalMs: appConfig.sweepIntervalMs,
		clockSkewMs: appConfig.clockSkewMs,
		store: defaultStoreSettings(),
		$secureSettings: ["store"]
	},

	actions: {
		/** Every show, in the order they were added; with `meta.showVersions`, each one's version. */
		list: {
			params: {
				offset: { type: "number", integer: true, min: 0, optional: true, convert: true },
				limit: { type: "number", integer: true, min: 1, optional: true, convert: true }
			},
			async handler(
				ctx: Context<{ offset?: number; limit?: number }, { showVersions?: boolean }>
			): Promise<(PublicShow | ShowState)[]> {
				const { offset, limit } = ctx.params;
				const shows = await findShows(this, { sort: ["_id"], offset, limit });
				return shows.map(show =>
					ctx.meta.showVersions === true ? toShowState(show) : toPublicShow(show)
				);
			}
		},

		get: {
			params: { showID: SHOW_ID },
			async handler(ctx: Context<{ showID: string }>): Promise<PublicShow> {
				return toPublicShow(await loadShow(this, ctx.params.showID));
			}
		},

		/**
		 * Holds `count` seats for checkout `holdId`, until it is confirmed or `holdTtlSeconds` pass
		 * (or the checkout's deadline, `ctx.meta.deadline`, plus the clock skew, if sooner).
		 * `resume`: an earlier attempt of this checkout may have got further, so a hold that has
		 * already left the document (sold) is looked up instead of being taken again.
		 */
		holdSeats: {
			...BY_SHOW,
			params: {
				showID: SHOW_ID,
				holdId: HOLD_ID,
				count: { type: "number", integer: true, min: 1, max: 100000 },
				resume: { type: "boolean", optional: true }
			},
			async handler(
				ctx: Context<{ showID: string; holdId: string; count: number; resume?: boolean }>
			): Promise<HoldView & { created: boolean }> {
				const { showID, holdId, count, resume } = ctx.params;
				const result = await this.writer.mutate(
					showID,
					takeHold(showID, holdId, count, {
						ttlMs: this.settings.holdTtlSeconds * 1000,
						resume: Boolean(resume),
						findSettled: this.writer.findSettled,
						deadline: this.stepDeadline(ctx)
					})
				);
				if (result.created) this.countMetric(SEATS_HELD, undefined, count);
				this.answerShowState(ctx, showID);
				return result;
			}
		},

		/** Makes a hold permanent: the seats are sold. Refused once the hold or the checkout expired. */
		confirmHold: {
			...BY_SHOW,
			params: { showID: SHOW_ID, holdId: HOLD_ID },
			async handler(ctx: Context<{ showID: string; holdId: string }>): Promise<HoldView> {
				const { showID, holdId } = ctx.params;
				const { view, sold } = await this.writer.mutate(
					showID,
					sellHold(showID, holdId, this.writer.findSettled, this.stepDeadline(ctx))
				);
				if (sold) this.countMetric(SEATS_SOLD, undefined, view.count);
				this.answerShowState(ctx, showID);
				return view;
			}
		},

		/**
		 * Gives a checkout's seats back, held or sold, however long after the sale. Exactly once:
		 * releasing a hold that is gone or already given back changes nothing, so a cancel or a
		 * compensation may repeat it freely. `onlyIfHeld` leaves sold seats alone, for
		 * compensations that must not undo a sale; it still reports them as `confirmed`.
		 */
		releaseSeats: {
			...BY_SHOW,
			params: {
				showID: SHOW_ID,
				holdId: HOLD_ID,
				onlyIfHeld: { type: "boolean", optional: true }
			},
			async handler(
				ctx: Context<{ showID: string; holdId: string; onlyIfHeld?: boolean }>
			): Promise<{ released: number; state: HoldState }> {
				const { showID, holdId, onlyIfHeld } = ctx.params;
				const result = await this.writer.mutate(
					showID,
					releaseHold(showID, holdId, Boolean(onlyIfHeld), this.writer.findSettled)
				);
				if (result.released > 0)
					this.countMetric(SEATS_RELEASED, undefined, result.released);
				this.answerShowState(ctx, showID);
				return result;
			}
		},

		/** Where a checkout's seats stand (for the reconciler and operators). */
		getHold: {
			params: { showID: SHOW_ID, holdId: HOLD_ID },
			async handler(
				ctx: Context<{ showID: string; holdId: string }>
			): Promise<{ state: HoldState }> {
				const { showID, holdId } = ctx.params;
				return { state: await findHoldState(this, this.writer, showID, holdId) };
			}
		},

		/** Drops a show's expired holds and settles what waits; the sweeper calls it through the owner. */
		expireHolds: {
			...BY_SHOW,
			params: { showID: SHOW_ID },
			handler(ctx: Context<{ showID: string }>): Promise<{ expired: number }> {
				// `applyChanges` drops expired holds and settles before every change; this one is empty.
				return this.writer.mutate(ctx.params.showID, (_show, _now, expired) => ({
					result: { expired: expired.length },
					changed: false
				}));
			}
		},

		...operatorActions
	},

	events: {
		...changeListenerEvents
	},

	methods: {
		/** The checkout's deadline its step carries in meta (none from a gateway of an older release). */
		stepDeadline(ctx: Context<unknown, { deadline?: unknown }>): StepDeadline {
			const at = ctx.meta.deadline;
			return {
				at: typeof at === "number" && Number.isFinite(at) ? at : null,
				skewMs: this.settings.clockSkewMs
			};
		},

		/**
		 * Hands the show's seats after this node's last write to it back with the answer (Moleculer
		 * returns `ctx.meta` to the caller), so a gateway shows its own client's booking or cancel on
		 * the next read without waiting for the `shows.changed` event.
		 */
		answerShowState(ctx: Context<unknown, { showState?: ShowState }>, showID: string): void {
			const state = this.writer.latest(showID);
			if (state) ctx.meta.showState = state;
		},

		/** Finds shows with expired holds or unsettled sales and has each one's owner see to them. */
		async sweepExpiredHolds(): Promise<void> {
			for (const showID of await dueShowIds(this))
				await this.broker.call("shows.expireHolds", { showID });
		}
	},

	created() {
		this.changeListeners = createChangeListeners(this.broker);
		this.writer = createStoreWriter(
			this,
			{
				saved: (state, expired) => {
					this.changeListeners.changed(state);
					if (expired.length === 0) return;
					this.countMetric(HOLDS_EXPIRED, undefined, expired.length);
					this.logger.info(
						`Show ${state._id}: ${expired.length} expired hold(s) released`
					);
				},
				warn: message => this.logger.warn(message)
			},
			appConfig.settledRecordsInMemory
		);
		this.sweepTimer = null;
	},

	async started() {
		const migrated = await migrateShows(this, this.writer);
		if (migrated > 0)
			this.logger.info(`Moved the sales of ${migrated} show(s) out of their documents`);
		// Expired holds already stop counting on the next write to their show; the sweeper makes
		// the counts right for shows that nobody writes to, and settles what a crash left. Every
		// instance may run it: the owner serialises the work and a second sweep finds nothing.
		this.sweepTimer = setInterval(() => {
			this.sweepExpiredHolds().catch(err =>
				this.logger.warn(`Hold sweep failed, will retry: ${(err as Error).message}`)
			);
		}, this.settings.sweepIntervalMs);
		this.sweepTimer.unref();
	},

	stopped() {
		if (this.sweepTimer) clearInterval(this.sweepTimer);
	}
};

export default ShowsService;
