/**
 * Insert-once collections with group commit, the same on every store backend: a backend gives the
 * store's plain operations (`CollectionOps`), and `sideCollection` adds batching, the schema
 * version of every record, and removals that gather (lib/store/group-commit.ts).
 */
import { appConfig } from "../common/config";
import { SCHEMA_VERSION } from "../common/schema-version";
import { createInsertBatcher, createRemoveBatcher } from "./group-commit";
import type { SideCollection } from "./store-api";

/** True for a unique-key violation on either store. */
function isDuplicateKeyError(err: unknown): boolean {
	const e = err as { code?: number; errorType?: string };
	return e?.code === 11000 || e?.errorType === "uniqueViolated";
}

/**
 * Runs an insert whose `_id` may exist already: true if it inserted, false if the key was taken.
 * A unique-key insert is atomic on every store, FerretDB included, so the first writer wins.
 */
export async function insertedOnce(insert: () => Promise<unknown>): Promise<boolean> {
	try {
		await insert();
		return true;
	} catch (err) {
		if (isDuplicateKeyError(err)) return false;
		throw err;
	}
}

/** What one store does for a side collection; `sideCollection` adds group commit on top. */
interface CollectionOps {
	/** Inserts all of `docs`; throws on a duplicate key (see InsertStore in group-commit.ts). */
	insertMany(docs: object[]): Promise<unknown>;
	duplicatesOf(err: unknown): Set<number> | null;
	insertOne(doc: object): Promise<unknown>;
	removeMany(ids: string[]): Promise<unknown>;
	findById(id: string): Promise<any>;
	find(query: Record<string, unknown>, limit: number): Promise<any[]>;
}

export function sideCollection(ops: CollectionOps): SideCollection {
	const insertOnce = createInsertBatcher<object>({
		insertMany: ops.insertMany,
		duplicatesOf: ops.duplicatesOf,
		insertOne: doc => insertedOnce(() => ops.insertOne(doc)),
		isDuplicate: isDuplicateKeyError
	});
	// Every record says the schema it was written at (docs/api.md, "Upgrades").
	const versioned = (doc: object) => insertOnce({ ...doc, schemaVersion: SCHEMA_VERSION });
	return {
		insertOnce: doc => versioned(doc),
		insertAllOnce: async docs => void (await Promise.all(docs.map(versioned))),
		findById: id => ops.findById(id),
		find: (query, limit = 0) => ops.find(query, limit),
		removeById: createRemoveBatcher(ops.removeMany),
		removeLater: createRemoveBatcher(ops.removeMany, appConfig.cleanupDelayMs)
	};
}
