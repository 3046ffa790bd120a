/**
 * The one path by which a show's document changes: per show, serialised, in batches (group
 * commit), with a version check on every write. Each batch first drops expired holds and settles
 * what earlier writes decided (see lib/show-seats.ts), then applies its changes in order. A change
 * that refuses fails alone; the others of its batch still count.
 */
import { storeConflict } from "./errors";
import type { ShowState } from "./types";
import { createBatchQueue, type Outcome } from "./batch-queue";
import {
	dropExpiredHolds,
	markSettled,
	refreshDerived,
	toPublicShow,
	unsettled,
	type Hold,
	type Releasing,
	type SeatRecord,
	type ShowDoc
} from "./show-seats";

interface Change<T> {
	result: T;
	changed: boolean;
}

/**
 * Applies one domain change to a loaded show; `expired` are the holds just dropped from it. It
 * either throws before touching the show, or completes: other changes of the same batch build on
 * the show it leaves. It may read the sales records, never write them. Nothing else (metrics,
 * events) happens inside, since a batch may be re-run.
 */
export type ShowChange<T> = (
	show: ShowDoc,
	now: number,
	expired: Hold[]
) => Change<T> | Promise<Change<T>>;

/** A checkout that has left the document: sold (settled), or sold and given back. */
export interface Settled {
	id: string;
	count: number;
	expiresAt: null;
	state: "confirmed" | "released";
}

/** What the writer needs from the shows service: its store, and what to do after a write. */
export interface ShowStore {
	load(showID: string): Promise<ShowDoc>;
	/** Stores `show` if the stored one is still at `expectedVersion`; false if it was not. */
	save(show: ShowDoc, expectedVersion: number): Promise<boolean>;
	records(): { sales: RecordCollection; releases: RecordCollection };
	/** After a write: the show's new seats (for events and answers), and the holds it expired. */
	saved(state: ShowState, expired: Hold[]): void;
	warn(message: string): void;
}

export interface RecordCollection {
	insertAllOnce(docs: SeatRecord[]): Promise<void>;
	findById<T>(id: string): Promise<T | null>;
}

export interface ShowWriter {
	/** Queues one change to a show; it is written with the changes queued beside it. */
	mutate<T>(showID: string, change: ShowChange<T>): Promise<T>;
	/** Writes nothing new: the batch it joins drops expired holds and settles what waits. */
	settle(showID: string): Promise<unknown>;
	findSettled(showID: string, holdId: string): Promise<Settled | null>;
	/** The show as this node last wrote it, if it has. */
	latest(showID: string): ShowState | undefined;
}

const SETTLE_ONLY: ShowChange<null> = () => ({ result: null, changed: false });

export function createShowWriter(
	store: ShowStore,
	options: { maxChangesPerWrite: number; maxWriteAttempts: number }
): ShowWriter {
	const latest = new Map<string, ShowState>();
	const queue = createBatchQueue<ShowChange<unknown>, unknown>(
		applyChanges,
		options.maxChangesPerWrite
	);

	async function writeRecords(showID: string, sales: Hold[], releases: Releasing[]) {
		const at = Date.now();
		const record = (r: { id: string; count: number }): SeatRecord => ({
			_id: r.id,
			showID,
			count: r.count,
			at
		});
		const records = store.records();
		await Promise.all([
			sales.length > 0 ? records.sales.insertAllOnce(sales.map(record)) : null,
			releases.length > 0 ? records.releases.insertAllOnce(releases.map(record)) : null
		]);
	}

	async function applyChanges(
		showID: string,
		changes: ShowChange<unknown>[]
	): Promise<Outcome<unknown>[]> {
		for (let attempt = 1; ; attempt++) {
			const show = await store.load(showID);
			const expectedVersion = show.version;
			const now = Date.now();
			const expired = dropExpiredHolds(show, now);
			// A record is only written for what a committed version of the document decided.
			const { sales, releases } = unsettled(show);
			await writeRecords(showID, sales, releases);
			markSettled(show, sales, releases);
			let changed = expired.length + sales.length + releases.length > 0;
			const outcomes: Outcome<unknown>[] = [];
			for (const change of changes) {
				try {
					const outcome = await change(show, now, expired);
					changed ||= outcome.changed;
					outcomes.push({ ok: true, value: outcome.result });
				} catch (error) {
					outcomes.push({ ok: false, error });
				}
			}
			if (!changed) return outcomes;
			refreshDerived(show, now);
			if (await store.save(show, expectedVersion)) {
				const state = { ...toPublicShow(show, now), version: show.version };
				latest.set(showID, state);
				store.saved(state, expired);
				// What this write decided is settled by the next write; when no other change is
				// waiting to carry it, a settle-only change does.
				const waiting = unsettled(show);
				if (waiting.sales.length + waiting.releases.length > 0)
					writer
						.settle(showID)
						.catch(err =>
							store.warn(
								`Show ${showID}: settling deferred: ${(err as Error).message}`
							)
						);
				return outcomes;
			}
			// Someone else wrote this show (the shard moved): re-read and try again.
			if (attempt >= options.maxWriteAttempts) throw storeConflict(showID);
			await new Promise(resolve => setTimeout(resolve, 5 * attempt));
		}
	}

	const writer: ShowWriter = {
		mutate<T>(showID: string, change: ShowChange<T>): Promise<T> {
			return queue.push(showID, change as ShowChange<unknown>) as Promise<T>;
		},
		settle: showID => writer.mutate(showID, SETTLE_ONLY),
		latest: showID => latest.get(showID),
		async findSettled(showID, holdId) {
			const records = store.records();
			const [sale, release] = await Promise.all([
				records.sales.findById<SeatRecord>(holdId),
				records.releases.findById<SeatRecord>(holdId)
			]);
			const found = release ?? sale;
			if (!found || found.showID !== showID) return null;
			return {
				id: holdId,
				count: found.count,
				expiresAt: null,
				state: release ? "released" : "confirmed"
			};
		}
	};
	return writer;
}
