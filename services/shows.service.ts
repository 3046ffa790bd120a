/**
 * `shows` owns the shows store: the houses, and the seats held or sold in them.
 *
 * A show's holds live inside the show's own document, so a hold and the seat count it changes are
 * written together in one document write: they cannot disagree, whatever crashes when. `reserved`
 * is always presold seats plus the seats of every live hold, held or confirmed.
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
	type StoreAdapter
} from "../mixins/db.mixin";
import {
	holdExpired,
	holdNotFound,
	houseTooSmall,
	idempotencyKeyReused,
	notEnoughSeats,
	showNotFound,
	storeConflict
} from "../lib/errors";
import { createBatchQueue, type BatchQueue, type Outcome } from "../lib/batch-queue";
import { createMetricsMixin, type MetricsMethods } from "../mixins/metrics.mixin";
import type { HoldState, HoldView, PublicShow } from "../lib/types";

export interface Hold {
	/** The checkout id: one hold per checkout, which makes every step idempotent. */
	id: string;
	count: number;
	state: "held" | "confirmed";
	/** Epoch ms after which an unconfirmed hold no longer counts; `null` once confirmed. */
	expiresAt: number | null;
	createdAt: number;
}

export interface ShowDoc {
	_id: string;
	name: string;
	houseSize: number;
	/** Seats sold before this system took over (the seed's sold-out rally). */
	presold: number;
	/** presold + the seats of every hold: derived, stored so that reads need no computation. */
	reserved: number;
	holds: Hold[];
	/** Earliest deadline among unconfirmed holds, so the sweeper finds them with one query. */
	nextExpiry: number | null;
	version: number;
	createdAt: number;
	updatedAt: number;
}

interface ShowsSettings extends ServiceSettingSchema {
	holdTtlSeconds: number;
	sweepIntervalMs: number;
	store: ReturnType<typeof defaultStoreSettings>;
}

interface ShowsMethods extends DbMethods, MetricsMethods {
	mutateShow<T>(showID: string, change: ShowChange<T>): Promise<T>;
	applyChanges(showID: string, changes: ShowChange<unknown>[]): Promise<Outcome<unknown>[]>;
	loadShow(showID: string): Promise<ShowDoc>;
	saveShow(show: ShowDoc, expectedVersion: number): Promise<boolean>;
	sweepExpiredHolds(): Promise<void>;
}

interface ShowsLocals {
	adapter: StoreAdapter;
	writeQueue: BatchQueue<ShowChange<unknown>, unknown>;
	sweepTimer: NodeJS.Timeout | null;
}

interface Change<T> {
	result: T;
	changed: boolean;
}

/**
 * Applies one domain change to a loaded show; `expired` are the holds just dropped from it. It
 * either throws before touching the show, or completes: other changes of the same batch build on
 * the show it leaves. Nothing else (metrics, events) happens inside, since a batch may be re-run.
 */
type ShowChange<T> = (show: ShowDoc, now: number, expired: Hold[]) => Change<T>;

const SHOW_ID = { type: "string", pattern: /^[0-9a-fA-F]{24}$/ } as const;
const HOLD_ID = { type: "string", pattern: /^[A-Za-z0-9_-]{8,64}$/ } as const;
const HOUSE_SIZE = { type: "number", integer: true, min: 1, max: 100000 } as const;
const SEATS_HELD = "tickets_seats_held_total";
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

function newShowDoc(fields: {
	_id: string;
	name: string;
	houseSize: number;
	presold: number;
}): ShowDoc {
	const now = Date.now();
	return {
		...fields,
		reserved: fields.presold,
		holds: [],
		nextExpiry: null,
		version: 1,
		createdAt: now,
		updatedAt: now
	};
}

/** A new 24-hex id in ObjectId form: 4 bytes of time, then 8 random bytes. */
function newShowId(): string {
	const time = Math.floor(Date.now() / 1000)
		.toString(16)
		.padStart(8, "0");
	return time + crypto.randomBytes(8).toString("hex");
}

function isExpired(hold: Hold, now: number): boolean {
	return hold.state === "held" && (hold.expiresAt ?? 0) <= now;
}

/** What the document stores as `reserved`: presold plus the seats of every hold in it. */
function seatsInDocument(show: ShowDoc): number {
	return show.holds.reduce((sum, h) => sum + h.count, show.presold);
}

/** Seats held or sold: presold plus every hold that still counts at `now`. */
function seatsTaken(show: ShowDoc, now: number): number {
	return show.holds.reduce((sum, h) => (isExpired(h, now) ? sum : sum + h.count), show.presold);
}

/** As clients see a show. A hold past its deadline no longer counts, swept or not. */
export function toPublicShow(show: ShowDoc, now = Date.now()): PublicShow {
	const reserved = seatsTaken(show, now);
	return {
		_id: show._id,
		name: show.name,
		houseSize: show.houseSize,
		reserved,
		available: show.houseSize - reserved
	};
}

/** Drops unconfirmed holds whose time is up; they stop counting at once (no sweeper needed). */
function dropExpiredHolds(show: ShowDoc, now: number): Hold[] {
	const expired = show.holds.filter(h => isExpired(h, now));
	if (expired.length > 0) {
		show.holds = show.holds.filter(h => !expired.includes(h));
		show.reserved = seatsInDocument(show);
	}
	return expired;
}

function holdView(showID: string, hold: Hold): HoldView {
	return {
		holdId: hold.id,
		showID,
		count: hold.count,
		state: hold.state,
		expiresAt: hold.expiresAt
	};
}

const ShowsService: ServiceSchema<ShowsSettings, ShowsMethods, ShowsLocals> = {
	name: "shows",

	mixins: [
		createDbMixin({
			database: "shows",
			collection: "shows",
			indexes: [{ fields: { nextExpiry: 1 } }],
			seed: () => SEED_SHOWS.map(show => ({ ...newShowDoc(show) }))
		}),
		createMetricsMixin([
			{ name: SEATS_HELD, description: "Seats put on hold by checkouts" },
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
				return docs.map(doc => toPublicShow(this.toPlain<ShowDoc>(doc)));
			}
		},

		get: {
			params: { showID: SHOW_ID },
			async handler(ctx: Context<{ showID: string }>): Promise<PublicShow> {
				return toPublicShow(await this.loadShow(ctx.params.showID));
			}
		},

		/** Holds `count` seats for checkout `holdId`, until it is confirmed or `holdTtlSeconds` pass. */
		holdSeats: {
			...BY_SHOW,
			params: {
				showID: SHOW_ID,
				holdId: HOLD_ID,
				count: { type: "number", integer: true, min: 1, max: 100000 }
			},
			async handler(
				ctx: Context<{ showID: string; holdId: string; count: number }>
			): Promise<HoldView & { created: boolean }> {
				const { showID, holdId, count } = ctx.params;
				const ttlMs = this.settings.holdTtlSeconds * 1000;
				const held = this.mutateShow<HoldView & { created: boolean }>(
					showID,
					(show, now) => {
						const existing = show.holds.find(h => h.id === holdId);
						if (existing) {
							// A retry or duplicate of the same checkout: same answer, and no new deadline,
							// so a hold can never be kept alive by repeating it.
							if (existing.count !== count) throw idempotencyKeyReused();
							return {
								result: { ...holdView(showID, existing), created: false },
								changed: false
							};
						}
						// Counted from the holds, not `show.reserved`: earlier changes of this batch count too.
						const available = show.houseSize - seatsInDocument(show);
						if (count > available) throw notEnoughSeats(count, available);
						const hold: Hold = {
							id: holdId,
							count,
							state: "held",
							expiresAt: now + ttlMs,
							createdAt: now
						};
						show.holds.push(hold);
						return {
							result: { ...holdView(showID, hold), created: true },
							changed: true
						};
					}
				);
				const result = await held;
				if (result.created) this.countMetric(SEATS_HELD, undefined, count);
				return result;
			}
		},

		/** Makes a hold permanent: the seats are sold. Refused once the hold has expired. */
		confirmHold: {
			...BY_SHOW,
			params: { showID: SHOW_ID, holdId: HOLD_ID },
			handler(ctx: Context<{ showID: string; holdId: string }>): Promise<HoldView> {
				const { showID, holdId } = ctx.params;
				return this.mutateShow(showID, (show, _now, expired) => {
					const hold = show.holds.find(h => h.id === holdId);
					if (!hold)
						throw expired.some(h => h.id === holdId)
							? holdExpired(holdId)
							: holdNotFound(holdId);
					if (hold.state === "confirmed")
						return { result: holdView(showID, hold), changed: false };
					hold.state = "confirmed";
					hold.expiresAt = null;
					return { result: holdView(showID, hold), changed: true };
				});
			}
		},

		/**
		 * Gives a hold's seats back. Idempotent: releasing a hold that is gone changes nothing, so a
		 * cancel or a compensation may repeat it freely. `onlyIfHeld` leaves a confirmed (sold) hold
		 * alone, for compensations that must not undo a sale.
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
				const result = await this.mutateShow<{ released: number; state: HoldState }>(
					showID,
					(show, _now, expired) => {
						const hold = show.holds.find(h => h.id === holdId);
						if (!hold) {
							const state = expired.some(h => h.id === holdId)
								? "expired"
								: "missing";
							return { result: { released: 0, state }, changed: false };
						}
						if (onlyIfHeld && hold.state === "confirmed")
							return { result: { released: 0, state: "confirmed" }, changed: false };
						show.holds = show.holds.filter(h => h !== hold);
						return {
							result: { released: hold.count, state: hold.state },
							changed: true
						};
					}
				);
				if (result.released > 0)
					this.countMetric(SEATS_RELEASED, undefined, result.released);
				return result;
			}
		},

		/** Where a checkout's seats stand: held, confirmed, expired or missing (for operators). */
		getHold: {
			params: { showID: SHOW_ID, holdId: HOLD_ID },
			async handler(
				ctx: Context<{ showID: string; holdId: string }>
			): Promise<{ state: HoldState }> {
				const show = await this.loadShow(ctx.params.showID);
				const hold = show.holds.find(h => h.id === ctx.params.holdId);
				if (!hold) return { state: "missing" };
				if (isExpired(hold, Date.now())) return { state: "expired" };
				return { state: hold.state };
			}
		},

		/** Drops a show's expired holds; the sweeper calls it through the shard owner. */
		expireHolds: {
			...BY_SHOW,
			params: { showID: SHOW_ID },
			handler(ctx: Context<{ showID: string }>): Promise<{ expired: number }> {
				// `mutateShow` drops expired holds before every change; this change is empty.
				return this.mutateShow(ctx.params.showID, (_show, _now, expired) => ({
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
					.map(doc => this.toPlain<ShowDoc>(doc))
					.flatMap(show =>
						show.holds
							.filter(h => h.state === "held" && !isExpired(h, now))
							.map(h => holdView(show._id, h))
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
				return this.mutateShow(ctx.params.showID, show => {
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
		async loadShow(showID: string): Promise<ShowDoc> {
			const doc = await this.adapter.findById(this.storeId(showID));
			if (!doc) throw showNotFound(showID);
			const show = this.toPlain<ShowDoc>(doc);
			show.holds ??= [];
			show.presold ??= 0;
			show.version ??= 1;
			return show;
		},

		/** Queues one change to a show; it is written with the changes queued beside it. */
		mutateShow<T>(showID: string, change: ShowChange<T>): Promise<T> {
			return this.writeQueue.push(showID, change as ShowChange<unknown>) as Promise<T>;
		},

		/**
		 * One write to a show for a batch of changes (see lib/batch-queue.ts): load it, drop expired
		 * holds, apply each change in order, and store the result with a version check. A change
		 * that refuses fails alone; the others still count.
		 */
		async applyChanges(
			showID: string,
			changes: ShowChange<unknown>[]
		): Promise<Outcome<unknown>[]> {
			for (let attempt = 1; ; attempt++) {
				const show = await this.loadShow(showID);
				const expectedVersion = show.version;
				const now = Date.now();
				const expired = dropExpiredHolds(show, now);
				let changed = expired.length > 0;
				const outcomes = changes.map((change): Outcome<unknown> => {
					try {
						const outcome = change(show, now, expired);
						changed ||= outcome.changed;
						return { ok: true, value: outcome.result };
					} catch (error) {
						return { ok: false, error };
					}
				});
				if (!changed) return outcomes;
				if (await this.saveShow(show, expectedVersion)) {
					if (expired.length > 0) {
						this.countMetric(HOLDS_EXPIRED, undefined, expired.length);
						this.logger.info(
							`Show ${showID}: ${expired.length} expired hold(s) released`
						);
					}
					return outcomes;
				}
				// Someone else wrote this show (the shard moved): re-read and try again.
				if (attempt >= MAX_WRITE_ATTEMPTS) throw storeConflict(showID);
				await new Promise(resolve => setTimeout(resolve, 5 * attempt));
			}
		},

		async saveShow(show: ShowDoc, expectedVersion: number): Promise<boolean> {
			show.reserved = seatsInDocument(show);
			const deadlines = show.holds.filter(h => h.state === "held").map(h => h.expiresAt ?? 0);
			show.nextExpiry = deadlines.length > 0 ? Math.min(...deadlines) : null;
			show.version = expectedVersion + 1;
			show.updatedAt = Date.now();
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
			this.broker.broadcast("shows.changed", toPublicShow(show));
			return true;
		},

		/** Finds shows with expired holds and has each one's owner drop them. */
		async sweepExpiredHolds(): Promise<void> {
			const due: ShowDoc[] = await this.adapter.find({
				query: { nextExpiry: { $lte: Date.now() } }
			});
			for (const doc of due) {
				const showID = this.toPlain<ShowDoc>(doc)._id;
				await this.broker.call("shows.expireHolds", { showID });
			}
		}
	},

	created() {
		this.writeQueue = createBatchQueue(
			(showID, changes) => this.applyChanges(showID, changes),
			MAX_CHANGES_PER_WRITE
		);
		this.sweepTimer = null;
	},

	started() {
		// Expired holds already stop counting on the next write to their show; the sweeper makes
		// the counts right for shows that nobody writes to. Every instance may run it: the owner
		// serialises the work and a second sweep finds nothing.
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
