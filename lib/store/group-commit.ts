/**
 * Group commit for insert-once records and removals: calls that arrive while a store write is under
 * way wait and go together in the next one (lib/common/batch-queue.ts). Under load a busy collection makes
 * one store round trip (and on NeDB one file append) for many checkouts instead of one each.
 */
import { createBatchQueue, type Outcome } from "../common/batch-queue";

/** Documents per store write at most. */
const MAX_BATCH = 200;

export interface InsertStore<Doc> {
	/** Inserts all of `docs`; on a duplicate key it throws, and may have inserted the others. */
	insertMany(docs: Doc[]): Promise<unknown>;
	/**
	 * After `insertMany` threw: the indexes of the documents that were duplicates, when the store
	 * says which and inserted the rest (MongoDB, unordered); null when it inserted none (NeDB).
	 */
	duplicatesOf(err: unknown): Set<number> | null;
	/** Inserts one document: true if inserted, false if its key was taken. */
	insertOne(doc: Doc): Promise<boolean>;
	isDuplicate(err: unknown): boolean;
}

/** `insertOnce(doc)`: true if this call inserted it, false if its `_id` was taken. */
export function createInsertBatcher<Doc>(store: InsertStore<Doc>): (doc: Doc) => Promise<boolean> {
	const queue = createBatchQueue<Doc, boolean>(async (_key, docs) => {
		const inserted = (value: boolean): Outcome<boolean> => ({ ok: true, value });
		try {
			await store.insertMany(docs);
			return docs.map(() => inserted(true));
		} catch (err) {
			if (!store.isDuplicate(err)) throw err;
			const duplicates = store.duplicatesOf(err);
			if (duplicates) return docs.map((_doc, i) => inserted(!duplicates.has(i)));
			// Nothing went in: one by one, so that each learns its own answer.
			const outcomes: Outcome<boolean>[] = [];
			for (const doc of docs) {
				try {
					outcomes.push(inserted(await store.insertOne(doc)));
				} catch (error) {
					outcomes.push({ ok: false, error });
				}
			}
			return outcomes;
		}
	}, MAX_BATCH);
	return doc => queue.push("insert", doc);
}

/**
 * `remove(id)`: resolves once a store write that removed it (if it was there) is done. With
 * `lingerMs`, for housekeeping nobody waits on, removals gather that long first, so that a busy
 * node removes many in one store write instead of a few in each.
 */
export function createRemoveBatcher(
	removeMany: (ids: string[]) => Promise<unknown>,
	lingerMs = 0
): (id: string) => Promise<void> {
	const queue = createBatchQueue<string[], void>(async (_key, lists) => {
		await removeMany([...new Set(lists.flat())]);
		return lists.map(() => ({ ok: true, value: undefined }));
	}, MAX_BATCH);
	if (lingerMs <= 0) return id => queue.push("remove", [id]);
	let gathering: { ids: string[]; removed: Promise<void> } | null = null;
	return id => {
		if (!gathering || gathering.ids.length >= MAX_BATCH) {
			const ids: string[] = [];
			const removed = new Promise<void>(resolve =>
				setTimeout(resolve, lingerMs).unref()
			).then(() => {
				if (gathering?.ids === ids) gathering = null;
				return queue.push("remove", ids);
			});
			gathering = { ids, removed };
		}
		gathering.ids.push(id);
		return gathering.removed;
	};
}
