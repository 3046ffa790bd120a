/**
 * The one path by which a show's document changes: per show, serialised, in batches (group
 * commit), with a version check on every write. Each batch first drops expired holds and settles
 * what earlier writes decided (see lib/shows/show-seats.ts), then applies its changes in order. A change
 * that refuses fails alone; the others of its batch still count.
 */
import { storeConflict } from "../common/errors";
import type { ShowState } from "../common/types";
import { createBatchQueue, type Outcome } from "../common/batch-queue";
import { createSettledRecords, type SeatRecords, type Settled } from "./settled-records";
import {
	dropExpiredHolds,
	markSettled,
	refreshDerived,
	toShowState,
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

/** What the writer needs from the shows service: its store, and what to do after a write. */
export interface ShowStore {
	load(showID: string): Promise<ShowDoc>;
	/** Stores `show` (at its next version) if the stored one is still at `expectedVersion`; false if not. */
	save(show: ShowDoc, expectedVersion: number): Promise<boolean>;
	records(): SeatRecords;
	/** After a write: the show's new seats (for events and answers), and the holds it expired. */
	saved(state: ShowState, expired: Hold[]): void;
	warn(message: string): void;
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
	options: { maxChangesPerWrite: number; maxWriteAttempts: number; maxKnownRecords: number }
): ShowWriter {
	const latest = new Map<string, ShowState>();
	/**
	 * Each show's document as this node last stored it. The next write starts from it instead of
	 * reading the store: if another node wrote the show since, the version check (and claim) of
	 * the save refuses, and the write starts again from the store. A batch that would store
	 * nothing (a refusal, a repeat, a settle with nothing due) proves nothing of the kind, so it
	 * runs again from the store: the answers of a stale copy never leave the writer.
	 */
	const lastStored = new Map<string, ShowDoc>();
	const settledRecords = createSettledRecords(store.records, {
		maxRecords: options.maxKnownRecords
	});
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
		const [sold, released] = [sales.map(record), releases.map(record)];
		await Promise.all([
			sold.length > 0 ? records.sales.insertAllOnce(sold) : null,
			released.length > 0 ? records.releases.insertAllOnce(released) : null
		]);
		settledRecords.recorded(showID, sold, released);
	}

	async function applyChanges(
		showID: string,
		changes: ShowChange<unknown>[]
	): Promise<Outcome<unknown>[]> {
		for (let attempt = 1; ; attempt++) {
			let stored: number | null = null;
			try {
				const outcomes = await applyOnce(showID, changes);
				if (outcomes) {
					stored = outcomes.version;
					return outcomes.outcomes;
				}
			} finally {
				settledRecords.finished(showID, stored);
				if (stored === null) lastStored.delete(showID);
			}
			// Someone else wrote this show (the shard moved): re-read and try again.
			if (attempt >= options.maxWriteAttempts) throw storeConflict(showID);
			await new Promise(resolve => setTimeout(resolve, 5 * attempt));
		}
	}

	/**
	 * One attempt at a batch: the outcomes and the version they left the show at, or null if
	 * another writer stored the show first.
	 */
	async function applyOnce(
		showID: string,
		changes: ShowChange<unknown>[]
	): Promise<{ outcomes: Outcome<unknown>[]; version: number } | null> {
		const known = lastStored.get(showID);
		const show = known ? structuredClone(known) : await store.load(showID);
		const expectedVersion = show.version;
		settledRecords.loaded(showID, expectedVersion);
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
		if (!changed) {
			if (known) {
				lastStored.delete(showID);
				return applyOnce(showID, changes);
			}
			lastStored.set(showID, structuredClone(show));
			return { outcomes, version: expectedVersion };
		}
		refreshDerived(show, now);
		// Every write moves the version on, so a reader can tell any two apart.
		show.version = expectedVersion + 1;
		if (await store.save(show, expectedVersion)) {
			lastStored.set(showID, structuredClone(show));
			const state = toShowState(show, now);
			latest.set(showID, state);
			store.saved(state, expired);
			// What this write decided is settled by the next write; when no other change is
			// waiting to carry it, a settle-only change does.
			const waiting = unsettled(show);
			if (waiting.sales.length + waiting.releases.length > 0)
				writer
					.settle(showID)
					.catch(err =>
						store.warn(`Show ${showID}: settling deferred: ${(err as Error).message}`)
					);
			return { outcomes, version: show.version };
		}
		return null;
	}

	const writer: ShowWriter = {
		mutate<T>(showID: string, change: ShowChange<T>): Promise<T> {
			return queue.push(showID, change as ShowChange<unknown>) as Promise<T>;
		},
		settle: showID => writer.mutate(showID, SETTLE_ONLY),
		latest: showID => latest.get(showID),
		findSettled: (showID, holdId) => settledRecords.find(showID, holdId)
	};
	return writer;
}
