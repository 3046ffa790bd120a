/**
 * `shows` owns the shows store: the houses, and the seats held or sold in them.
 *
 * A show's document holds only what a write needs: house size, counters, and the checkouts in
 * flight. Sold seats are a counter in it and one insert-once record per checkout beside it
 * (`show_sales`, `show_releases`), so the document does not grow with sales. See lib/show-seats.ts
 * for how a checkout's seats move through the document and out of it.
 *
 * Every write to a show goes to one node (the `Shard` strategy keyed by show id) and is serialised
 * there per show; changes that arrive meanwhile are applied together and stored in one write (group
 * commit). Each write carries a version check, and on MongoDB-wire stores a unique-insert claim of
 * the new version, as a second guard. See README "Seat safety".
 */
import crypto from "node:crypto";
import type { Context, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { appConfig } from "../moleculer.config";
import {
	createDbMixin,
	defaultStoreSettings,
	type DbMethods,
	type SideCollection,
	type StoreAdapter
} from "../mixins/db.mixin";
import { houseTooSmall, showNotFound } from "../lib/errors";
import { releaseHold, sellHold, takeHold } from "../lib/seat-changes";
import { createShowWriter, type ShowWriter } from "../lib/show-writer";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import {
	fromStored,
	holdView,
	isExpired,
	newShowDoc,
	seatsInDocument,
	toPublicShow,
	type ShowDoc
} from "../lib/show-seats";
import type { HoldState, HoldView, PublicShow, ShowState } from "../lib/types";

interface ShowsSettings extends ServiceSettingSchema {
	holdTtlSeconds: number;
	sweepIntervalMs: number;
	store: ReturnType<typeof defaultStoreSettings>;
}

interface ShowsMethods extends DbMethods, MetricsMethods {
	answerShowState(ctx: Context<unknown, { showState?: ShowState }>, showID: string): void;
	loadShow(showID: string): Promise<ShowDoc>;
	saveShow(show: ShowDoc, expectedVersion: number): Promise<boolean>;
	sweepExpiredHolds(): Promise<void>;
	migrateShows(): Promise<void>;
}

interface ShowsLocals {
	adapter: StoreAdapter;
	side: Record<"show_sales" | "show_releases", SideCollection>;
	writer: ShowWriter;
	sweepTimer: NodeJS.Timeout | null;
}

const SHOW_ID = { type: "string", pattern: /^[0-9a-fA-F]{24}$/ } as const;
const HOLD_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{8,64}$/ } as const;
const HOUSE_SIZE = { type: "number", integer: true, min: 1, max: 100000 } as const;
const SEATS_HELD = "tickets_seats_held_total";
const SEATS_SOLD = "tickets_seats_sold_total";
const SEATS_RELEASED = "tickets_seats_released_total";
const HOLDS_EXPIRED = "tickets_holds_expired_total";

/** Checkouts one show write may carry when many wait for the same show. */
const MAX_CHANGES_PER_WRITE = 100;

/** Tries of one show write that keeps meeting a concurrent writer, before answering 503. */
const MAX_WRITE_ATTEMPTS = 8;

/** Writes for one show go to one node; see the header comment. */
const BY_SHOW = { strategy: "Shard", strategyOptions: { shardKey: "showID" } } as const;

/** The three shows of the original system, with their original ids. */
export const SEED_SHOWS = [
	{ _id: "5b805a00297ae6047030f2e0", name: "Rock Concert", houseSize: 100, presold: 0 },
	{ _id: "5b805a570cee1505a52bc75d", name: "Shakespeare Play", houseSize: 50, presold: 0 },
	{ _id: "5b805a790cee1505a52bc75e", name: "Monster Truck Rally", houseSize: 500, presold: 500 }
];

/** A new 24-hex id in ObjectId form: 4 bytes of time, then 8 random bytes. */
function newShowId(): string {
	const time = Math.floor(Date.now() / 1000)
		.toString(16)
		.padStart(8, "0");
	return time + crypto.randomBytes(8).toString("hex");
}

const ShowsService: ServiceSchema<ShowsSettings, ShowsMethods, ShowsLocals> = {
	name: "shows",

	mixins: [
		createDbMixin({
			database: "shows",
			collection: "shows",
			indexes: [{ fields: { nextExpiry: 1 } }],
			sideCollections: ["show_sales", "show_releases"],
			seed: () => SEED_SHOWS.map(show => ({ ...newShowDoc(show) }))
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
		store: defaultStoreSettings(),
		$secureSettings: ["store"]
	},

	actions: {
		/** Every show, in the order they were added. */
		list: {
			params: {
				offset: { type: "number", integer: true, min: 0, optional: true, convert: true },
				limit: { type: "number", integer: true, min: 1, optional: true, convert: true }
			},
			async handler(
				ctx: Context<{ offset?: number; limit?: number }>
			): Promise<PublicShow[]> {
				const docs: ShowDoc[] = await this.adapter.find({
					sort: ["_id"],
					offset: ctx.params.offset,
					limit: ctx.params.limit
				});
				return docs.map(doc => toPublicShow(fromStored(this.toPlain<ShowDoc>(doc))));
			}
		},

		get: {
			params: { showID: SHOW_ID },
			async handler(ctx: Context<{ showID: string }>): Promise<PublicShow> {
				return toPublicShow(await this.loadShow(ctx.params.showID));
			}
		},

		/**
		 * Holds `count` seats for checkout `holdId`, until it is confirmed or `holdTtlSeconds` pass.
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
						findSettled: this.writer.findSettled
					})
				);
				if (result.created) this.countMetric(SEATS_HELD, undefined, count);
				this.answerShowState(ctx, showID);
				return result;
			}
		},

		/** Makes a hold permanent: the seats are sold. Refused once the hold has expired. */
		confirmHold: {
			...BY_SHOW,
			params: { showID: SHOW_ID, holdId: HOLD_ID },
			async handler(ctx: Context<{ showID: string; holdId: string }>): Promise<HoldView> {
				const { showID, holdId } = ctx.params;
				const { view, sold } = await this.writer.mutate(
					showID,
					sellHold(showID, holdId, this.writer.findSettled)
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
				const show = await this.loadShow(showID);
				const hold = show.holds.find(h => h.id === holdId);
				if (hold) return { state: isExpired(hold, Date.now()) ? "expired" : hold.state };
				if (show.releasing.some(r => r.id === holdId)) return { state: "released" };
				return {
					state: (await this.writer.findSettled(showID, holdId))?.state ?? "missing"
				};
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

		/** Operators: live unconfirmed holds and their deadlines. */
		holds: {
			params: { showID: { ...SHOW_ID, optional: true } },
			async handler(ctx: Context<{ showID?: string }>): Promise<HoldView[]> {
				const query: Record<string, unknown> = { nextExpiry: { $ne: null } };
				if (ctx.params.showID) query._id = this.storeId(ctx.params.showID);
				const docs: ShowDoc[] = await this.adapter.find({ query });
				const now = Date.now();
				return docs
					.map(doc => fromStored(this.toPlain<ShowDoc>(doc)))
					.flatMap(show =>
						show.holds
							.filter(h => h.state === "held" && !isExpired(h, now))
							.map(h => holdView(show._id, h, "held"))
					);
			}
		},

		/** Operators: add a show. */
		create: {
			params: {
				name: { type: "string", trim: true, min: 1, max: 200 },
				houseSize: HOUSE_SIZE
			},
			async handler(ctx: Context<{ name: string; houseSize: number }>): Promise<PublicShow> {
				const show = newShowDoc({
					_id: newShowId(),
					name: ctx.params.name,
					houseSize: ctx.params.houseSize,
					presold: 0
				});
				await this.adapter.insert({ ...show, _id: this.storeId(show._id) });
				const view = toPublicShow(show);
				ctx.broadcast("shows.changed", view);
				return view;
			}
		},

		/** Operators: change a house size, never below the seats already held or sold. */
		resize: {
			...BY_SHOW,
			params: { showID: SHOW_ID, houseSize: HOUSE_SIZE },
			handler(ctx: Context<{ showID: string; houseSize: number }>): Promise<PublicShow> {
				return this.writer.mutate(ctx.params.showID, show => {
					const reserved = seatsInDocument(show);
					if (ctx.params.houseSize < reserved)
						throw houseTooSmall(ctx.params.houseSize, reserved);
					show.houseSize = ctx.params.houseSize;
					return { result: toPublicShow(show), changed: true };
				});
			}
		}
	},

	methods: {
		/**
		 * Hands the show's seats after this node's last write to it back with the answer (Moleculer
		 * returns `ctx.meta` to the caller), so a gateway shows its own client's booking or cancel on
		 * the next read without waiting for the `shows.changed` event.
		 */
		answerShowState(ctx: Context<unknown, { showState?: ShowState }>, showID: string): void {
			const state = this.writer.latest(showID);
			if (state) ctx.meta.showState = state;
		},

		async loadShow(showID: string): Promise<ShowDoc> {
			const doc = await this.adapter.findById(this.storeId(showID));
			if (!doc) throw showNotFound(showID);
			return fromStored(this.toPlain<ShowDoc>(doc));
		},

		async saveShow(show: ShowDoc, expectedVersion: number): Promise<boolean> {
			const { _id, ...fields } = show;
			if (!(await this.claimVersion(_id, show.version))) return false;
			const written = await this.updateWhere(
				{ _id: this.storeId(_id), version: expectedVersion },
				{ $set: fields }
			).catch(async err => {
				await this.dropClaim(_id, show.version).catch(() => undefined);
				throw err;
			});
			if (written !== 1) {
				await this.dropClaim(_id, show.version);
				return false;
			}
			// The previous version's claim has done its work; dropping it keeps the claims few.
			this.pruneClaim(_id, expectedVersion).catch(() => undefined);
			return true;
		},

		/** Finds shows with expired holds or unsettled sales and has each one's owner see to them. */
		async sweepExpiredHolds(): Promise<void> {
			const due: ShowDoc[] = await this.adapter.find({
				query: { nextExpiry: { $lte: Date.now() } }
			});
			for (const doc of due) {
				const showID = this.toPlain<ShowDoc>(doc)._id;
				await this.broker.call("shows.expireHolds", { showID });
			}
		},

		/**
		 * Shows written before sales moved out of the document keep every confirmed hold in it.
		 * Settling them writes their sales records and moves the seats into `sold`. Idempotent and
		 * safe beside another node doing the same: records are insert-once, and the document write
		 * carries the version check and claim.
		 */
		async migrateShows(): Promise<void> {
			const old: ShowDoc[] = await this.adapter.find({ query: { sold: { $exists: false } } });
			for (const doc of old) await this.writer.settle(this.toPlain<ShowDoc>(doc)._id);
			if (old.length > 0)
				this.logger.info(`Moved the sales of ${old.length} show(s) out of their documents`);
		}
	},

	created() {
		this.writer = createShowWriter(
			{
				load: showID => this.loadShow(showID),
				save: (show, expectedVersion) => this.saveShow(show, expectedVersion),
				// The record collections open once the store is connected, after `created`.
				records: () => ({ sales: this.side.show_sales, releases: this.side.show_releases }),
				saved: (state, expired) => {
					this.broker.broadcast("shows.changed", state);
					if (expired.length === 0) return;
					this.countMetric(HOLDS_EXPIRED, undefined, expired.length);
					this.logger.info(
						`Show ${state._id}: ${expired.length} expired hold(s) released`
					);
				},
				warn: message => this.logger.warn(message)
			},
			{
				maxChangesPerWrite: MAX_CHANGES_PER_WRITE,
				maxWriteAttempts: MAX_WRITE_ATTEMPTS,
				maxKnownRecords: appConfig.settledRecordsInMemory
			}
		);
		this.sweepTimer = null;
	},

	async started() {
		await this.migrateShows();
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
