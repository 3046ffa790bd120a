/**
 * The MongoDB store backend (tested on FerretDB): one database per service, version claims in
 * `<collection>_claims` (FerretDB's conditional updates are read-then-write, so a unique insert
 * decides which writer may store a version), and the driver's connection errors as "unreachable".
 */
import MongoAdapter from "moleculer-db-adapter-mongo";
import { appConfig } from "../common/config";
import { STORE_UNREACHABLE } from "../common/errors";
import { createRemoveBatcher } from "./group-commit";
import { insertedOnce, sideCollection } from "./side-collections";
import type {
	SideCollection,
	StoreAdapter,
	StoreBackendFactory,
	StoreBackendKind
} from "./store-api";

interface MongoCollection {
	insertOne(doc: object): Promise<unknown>;
	insertMany(docs: object[], options: object): Promise<unknown>;
	findOne(query: object): Promise<any>;
	find(query: object): { limit(n: number): { toArray(): Promise<any[]> } };
	deleteOne(query: object): Promise<unknown>;
	deleteMany(query: object): Promise<unknown>;
	createIndex(fields: Record<string, number>, options?: object): Promise<unknown>;
}

/** A claim older than this belongs to a writer that died between claiming and writing. */
const STALE_CLAIM_MS = 10 * 1000;

const DRIVER_OPTIONS = {
	useUnifiedTopology: true,
	// Fail a connection attempt quickly; moleculer-db's `started` retries every second.
	serverSelectionTimeoutMS: 5000,
	connectTimeoutMS: 5000
};

/** The documents a failed unordered insertMany refused as duplicates, by index. */
function duplicatesOf(err: unknown): Set<number> | null {
	const refused = (err as { writeErrors?: { index: number; code: number }[] }).writeErrors;
	if (!Array.isArray(refused) || !refused.every(w => w.code === 11000)) return null;
	return new Set(refused.map(w => w.index));
}

function mongoSideCollection(collection: MongoCollection): SideCollection {
	return sideCollection({
		// Unordered: every new document goes in, and duplicates are reported without stopping it.
		insertMany: docs => collection.insertMany(docs, { ordered: false }),
		duplicatesOf,
		insertOne: doc => collection.insertOne(doc),
		removeMany: ids => collection.deleteMany({ _id: { $in: ids } }),
		findById: id => collection.findOne({ _id: id }),
		find: (query, limit) => collection.find(query).limit(limit).toArray()
	});
}

const createMongoBackend: StoreBackendFactory = (settings, layout) => {
	const database = (settings.databasePrefix ?? "") + layout.database;
	const adapter = new MongoAdapter(
		settings.mongoUri!,
		DRIVER_OPTIONS,
		database
	) as unknown as StoreAdapter & {
		collection: MongoCollection;
		db: { collection(name: string): MongoCollection };
	};
	let claims: MongoCollection | null = null;
	let pruneLater: ((id: string) => Promise<void>) | null = null;
	return {
		description: `MongoDB database "${layout.database}"`,
		adapter,
		async open() {
			claims = adapter.db.collection(`${layout.collection}_claims`);
			const claimStore = claims;
			pruneLater = createRemoveBatcher(
				ids => claimStore.deleteMany({ _id: { $in: ids } }),
				appConfig.cleanupDelayMs
			);
			for (const index of layout.indexes ?? [])
				await adapter.collection.createIndex(index.fields, { unique: !!index.unique });
			// The main collection too, for insert-once records with group commit (string ids only).
			const side = { [layout.collection]: mongoSideCollection(adapter.collection) };
			for (const name of layout.sideCollections ?? []) {
				const collection = adapter.db.collection(name);
				for (const field of layout.sideIndexes?.[name] ?? [])
					await collection.createIndex({ [field]: 1 });
				side[name] = mongoSideCollection(collection);
			}
			return side;
		},
		async claimVersion(docId, version) {
			const now = Date.now();
			const id = `${docId}:${version}`;
			if (await insertedOnce(() => claims!.insertOne({ _id: id, at: now }))) return true;
			// Taken: by a live writer (we lost, re-read), or by one that died before writing.
			await claims!.deleteOne({ _id: id, at: { $lt: now - STALE_CLAIM_MS } });
			return false;
		},
		async dropClaim(docId, version) {
			await claims?.deleteOne({ _id: `${docId}:${version}` });
		},
		async pruneClaim(docId, version) {
			await pruneLater?.(`${docId}:${version}`);
		},
		updateWhere: (query, update) => adapter.updateMany(query, update),
		storeId: id => adapter.stringToObjectID!(id),
		close: async () => undefined
	};
};

export const MONGO_BACKEND: StoreBackendKind = {
	create: createMongoBackend,
	isUnreachable: err => STORE_UNREACHABLE.test((err as Error | undefined)?.name ?? "")
};
