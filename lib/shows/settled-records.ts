/**
 * What this shows node knows of a show's settled checkouts: its sales records and release records
 * (see lib/shows/show-seats.ts). A cancel asks whether a checkout that has left the document was sold and
 * whether it was given back already. Asking the store each time cost a scan on FerretDB 1.24
 * (SQLite), whose `_id` index is on another expression than its `_id` lookups, so each cancel grew
 * slower with the sales behind it.
 *
 * A show's records are written only by its writer, for what a committed version of its document
 * decided, and before the write that moves them out of the document. So what was read from the store
 * during a write of version V, plus the records this node wrote since, is complete for every later
 * version this node wrote itself. A document at any other version means that another node wrote the
 * show (its shard moved, or two nodes raced): the show's records are dropped and read again when next
 * needed. Outside a write (operators, the reconciler) the store is asked directly.
 */
import type { SeatRecord } from "./show-seats";

/** A checkout that has left the document: sold (settled), or sold and given back. */
export interface Settled {
	id: string;
	count: number;
	expiresAt: null;
	state: "confirmed" | "released";
}

interface RecordCollection {
	insertAllOnce(docs: SeatRecord[]): Promise<void>;
	findById<T>(id: string): Promise<T | null>;
	find<T>(query: Record<string, unknown>, limit?: number): Promise<T[]>;
}

export interface SeatRecords {
	sales: RecordCollection;
	releases: RecordCollection;
}

interface KnownShow {
	/** The document version these records are complete for. */
	version: number;
	/** Seats of each checkout sold, and of each given back (a release may have no sale record). */
	sold: Map<string, number>;
	released: Map<string, number>;
}

interface SettledRecords {
	/** A write of `showID` loaded `version`; records known for another version are dropped. */
	loaded(showID: string, version: number): void;
	/** The write of `showID` stored records (or found them stored) before its changes. */
	recorded(showID: string, sales: SeatRecord[], releases: SeatRecord[]): void;
	/** The write stored the document at `version`, or failed (null). */
	finished(showID: string, version: number | null): void;
	find(showID: string, holdId: string): Promise<Settled | null>;
}

export function createSettledRecords(
	records: () => SeatRecords,
	options: { maxRecords: number }
): SettledRecords {
	/** Shows whose records this node holds, least recently used first. */
	const known = new Map<string, KnownShow>();
	/** The version loaded by each write in progress (one at a time per show). */
	const writing = new Map<string, number>();
	let held = 0;
	/** Shows with more records than the budget: always looked up, never read whole again. */
	const tooMany = new Set<string>();

	const forget = (showID: string) => {
		const show = known.get(showID);
		if (!show) return;
		held -= show.sold.size + show.released.size;
		known.delete(showID);
	};

	const settled = (holdId: string, count: number, released: boolean): Settled => ({
		id: holdId,
		count,
		expiresAt: null,
		state: released ? "released" : "confirmed"
	});

	/** The store's answer for one checkout: a lookup of each record by id. */
	async function lookUp(showID: string, holdId: string): Promise<Settled | null> {
		const { sales, releases } = records();
		const [sale, release] = await Promise.all([
			sales.findById<SeatRecord>(holdId),
			releases.findById<SeatRecord>(holdId)
		]);
		const found = release ?? sale;
		if (!found || found.showID !== showID) return null;
		return settled(holdId, found.count, Boolean(release));
	}

	/** Reads all of a show's records, unless they would pass the budget alone. */
	async function readShow(showID: string, version: number): Promise<KnownShow | null> {
		const { sales, releases } = records();
		const [sold, released] = await Promise.all([
			sales.find<SeatRecord>({ showID }, options.maxRecords + 1),
			releases.find<SeatRecord>({ showID }, options.maxRecords + 1)
		]);
		if (sold.length + released.length > options.maxRecords) {
			tooMany.add(showID);
			return null;
		}
		const show: KnownShow = {
			version,
			sold: new Map(sold.map(r => [r._id, r.count])),
			released: new Map(released.map(r => [r._id, r.count]))
		};
		held += show.sold.size + show.released.size;
		known.set(showID, show);
		// Least recently used shows go first when the budget is passed.
		for (const [id] of known) {
			if (held <= options.maxRecords) break;
			if (id !== showID) forget(id);
		}
		return show;
	}

	return {
		loaded(showID, version) {
			writing.set(showID, version);
			const show = known.get(showID);
			if (show && show.version !== version) forget(showID);
		},

		recorded(showID, sales, releases) {
			const show = known.get(showID);
			if (!show) return;
			const add = (into: Map<string, number>, r: SeatRecord) => {
				if (!into.has(r._id)) held++;
				into.set(r._id, r.count);
			};
			for (const r of sales) add(show.sold, r);
			for (const r of releases) add(show.released, r);
		},

		finished(showID, version) {
			writing.delete(showID);
			const show = known.get(showID);
			if (!show) return;
			if (version === null) forget(showID);
			else show.version = version;
		},

		async find(showID, holdId) {
			const version = writing.get(showID);
			if (version === undefined || tooMany.has(showID)) return lookUp(showID, holdId);
			let show = known.get(showID);
			if (show) {
				known.delete(showID);
				known.set(showID, show);
			} else {
				show = (await readShow(showID, version)) ?? undefined;
				if (!show) return lookUp(showID, holdId);
			}
			const released = show.released.get(holdId);
			if (released !== undefined) return settled(holdId, released, true);
			const sold = show.sold.get(holdId);
			return sold === undefined ? null : settled(holdId, sold, false);
		}
	};
}
