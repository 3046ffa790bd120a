/**
 * The shows service's access to its store: a show's document loaded in today's shape and saved
 * with its version check and claim (the show writer's store), new shows, the migration, and the
 * queries of the sweeper and operators. Plain functions over `ShowStoreAccess`, which the service
 * itself is (its adapter, record collections and the db mixin's methods).
 */
import crypto from "node:crypto";
import type { DbMethods, SideCollection, StoreAdapter } from "../store/store-api";
import { showNotFound } from "../common/errors";
import { fromStored, holdView, isExpired, newShowDoc, type ShowDoc } from "./show-seats";
import { createShowWriter, type ShowStore, type ShowWriter } from "./show-writer";
import type { HoldState, HoldView } from "../common/types";
import { SCHEMA_VERSION } from "../common/schema-version";

export type ShowStoreAccess = Pick<
	DbMethods,
	"claimVersion" | "dropClaim" | "pruneClaim" | "updateWhere" | "storeId" | "toPlain"
> & {
	adapter: StoreAdapter;
	side: Record<"show_sales" | "show_releases", SideCollection>;
};

/** A show's id: 24 hex digits, the ObjectId form that new shows get (`newShowId`). */
export const SHOW_ID = { type: "string", pattern: /^[0-9a-fA-F]{24}$/ } as const;

/**
 * Writes for one show go to one node (the `Shard` strategy keyed by show id), which serialises
 * them; see services/shows.service.ts.
 */
export const BY_SHOW = { strategy: "Shard", strategyOptions: { shardKey: "showID" } } as const;

/** Checkouts one show write may carry when many wait for the same show. */
const MAX_CHANGES_PER_WRITE = 100;

/** Tries of one show write that keeps meeting a concurrent writer, before answering 503. */
const MAX_WRITE_ATTEMPTS = 8;

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

/** The documents of an empty store. */
export function seedShows(): Record<string, unknown>[] {
	return SEED_SHOWS.map(show => ({ ...newShowDoc(show), schemaVersion: SCHEMA_VERSION }));
}

export async function loadShow(store: ShowStoreAccess, showID: string): Promise<ShowDoc> {
	const doc = await store.adapter.findById(store.storeId(showID));
	if (!doc) throw showNotFound(showID);
	return fromStored(store.toPlain<ShowDoc>(doc));
}

/** Stores `show` (at its next version) if the stored one is still at `expectedVersion`; false if not. */
async function saveShow(
	store: ShowStoreAccess,
	show: ShowDoc,
	expectedVersion: number
): Promise<boolean> {
	// Fields this release does not know (a later release's) are kept; the version says this
	// release wrote the document last, so a later one knows to recompute what it added.
	const { _id, ...fields } = { ...show, schemaVersion: SCHEMA_VERSION };
	if (!(await store.claimVersion(_id, show.version))) return false;
	const written = await store
		.updateWhere({ _id: store.storeId(_id), version: expectedVersion }, { $set: fields })
		.catch(async err => {
			await store.dropClaim(_id, show.version).catch(() => undefined);
			throw err;
		});
	if (written !== 1) {
		await store.dropClaim(_id, show.version);
		return false;
	}
	// The previous version's claim has done its work; dropping it keeps the claims few.
	store.pruneClaim(_id, expectedVersion).catch(() => undefined);
	return true;
}

/** Shows as moleculer-db's `find` selects them (query, sort, offset, limit), in today's shape. */
export async function findShows(
	store: ShowStoreAccess,
	filters: Record<string, unknown>
): Promise<ShowDoc[]> {
	const docs: unknown[] = await store.adapter.find(filters);
	return docs.map(doc => fromStored(store.toPlain<ShowDoc>(doc)));
}

async function showIdsWhere(
	store: ShowStoreAccess,
	query: Record<string, unknown>
): Promise<string[]> {
	const docs: unknown[] = await store.adapter.find({ query });
	return docs.map(doc => store.toPlain<ShowDoc>(doc)._id);
}

/**
 * The one path by which a show's document changes (lib/shows/show-writer.ts), over this store; `after`
 * hears of each write.
 */
export function createStoreWriter(
	store: ShowStoreAccess,
	after: Pick<ShowStore, "saved" | "warn">,
	maxKnownRecords: number
): ShowWriter {
	return createShowWriter(
		{
			load: showID => loadShow(store, showID),
			save: (show, expectedVersion) => saveShow(store, show, expectedVersion),
			// The record collections open once the store is connected, after `created`.
			records: () => ({ sales: store.side.show_sales, releases: store.side.show_releases }),
			...after
		},
		{
			maxChangesPerWrite: MAX_CHANGES_PER_WRITE,
			maxWriteAttempts: MAX_WRITE_ATTEMPTS,
			maxKnownRecords
		}
	);
}

/** The sweeper's work: shows with a hold past its deadline or sales not yet settled. */
export function dueShowIds(store: ShowStoreAccess): Promise<string[]> {
	return showIdsWhere(store, { nextExpiry: { $lte: Date.now() } });
}

/**
 * Shows written before sales moved out of the document keep every confirmed hold in it.
 * Settling them writes their sales records and moves the seats into `sold`. Idempotent and
 * safe beside another node doing the same: records are insert-once, and the document write
 * carries the version check and claim. Resolves to how many shows it moved.
 * Remove in release 1.2.0: a store older than c4d7bfb is first opened by 1.1.0, which moves it.
 */
export async function migrateShows(store: ShowStoreAccess, writer: ShowWriter): Promise<number> {
	const old = await showIdsWhere(store, { sold: { $exists: false } });
	for (const showID of old) await writer.settle(showID);
	return old.length;
}

/** Where a checkout's seats stand: in the document, or in the records once they have left it. */
export async function findHoldState(
	store: ShowStoreAccess,
	writer: ShowWriter,
	showID: string,
	holdId: string
): Promise<HoldState> {
	const show = await loadShow(store, showID);
	const hold = show.holds.find(h => h.id === holdId);
	if (hold) return isExpired(hold, Date.now()) ? "expired" : hold.state;
	if (show.releasing.some(r => r.id === holdId)) return "released";
	return (await writer.findSettled(showID, holdId))?.state ?? "missing";
}

/** Live unconfirmed holds, of one show or of all. */
export async function liveHolds(store: ShowStoreAccess, showID?: string): Promise<HoldView[]> {
	const query: Record<string, unknown> = { nextExpiry: { $ne: null } };
	if (showID) query._id = store.storeId(showID);
	const shows = await findShows(store, { query });
	const now = Date.now();
	return shows.flatMap(show =>
		show.holds
			.filter(h => h.state === "held" && !isExpired(h, now))
			.map(h => holdView(show._id, h, "held"))
	);
}

/** Adds a show with a new id and no seats taken. */
export async function insertShow(
	store: ShowStoreAccess,
	name: string,
	houseSize: number
): Promise<ShowDoc> {
	const show = newShowDoc({ _id: newShowId(), name, houseSize, presold: 0 });
	await store.adapter.insert({
		...show,
		_id: store.storeId(show._id),
		schemaVersion: SCHEMA_VERSION
	});
	return show;
}
