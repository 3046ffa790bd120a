/**
 * A service's own store through moleculer-db: MongoDB when MONGO_URI is set (one database per
 * service), otherwise an embedded NeDB file under DATA_DIR/<database>/. Seeds an empty store and
 * creates the indexes the service's queries need.
 *
 * moleculer-db's generated CRUD actions are switched off: every write must go through the
 * service's own domain actions, which validate and serialise it.
 */
import fs from "node:fs";
import path from "node:path";
import type { Service, ServiceSchema } from "moleculer";
import Datastore from "@seald-io/nedb";
import DbService from "moleculer-db";
import MongoAdapter from "moleculer-db-adapter-mongo";
import { appConfig } from "../lib/common/config";
import { createInsertBatcher, createRemoveBatcher } from "../lib/store/group-commit";
import { closeAppendHandles, keepAppendHandleOpen } from "../lib/store/nedb-appender";
import type { DbMethods, IndexSpec, SideCollection, StoreAdapter } from "../lib/store/store-api";
import { STORE_UNREACHABLE, storeUnavailable } from "../lib/common/errors";
import { checkDataFiles, lineSafeSerialization } from "../lib/store/nedb-lines";
import { SCHEMA_VERSION } from "../lib/common/schema-version";

export interface DbMixinOptions {
	/** Database name with MongoDB, folder name under DATA_DIR with NeDB. */
	database: string;
	collection: string;
	indexes?: IndexSpec[];
	/** Documents to insert into an empty store. */
	seed?: () => Record<string, unknown>[];
	/**
	 * More collections of the same database, written only by inserts and removals (see
	 * `SideCollection`). Reached as `this.side[name]`.
	 */
	sideCollections?: string[];
	/**
	 * Fields to index in side collections, on MongoDB (NeDB scans them in memory). A query by
	 * one of them reads all of a show's records at once (lib/shows/settled-records.ts).
	 */
	sideIndexes?: Record<string, string[]>;
}

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

interface MongoCollection {
	insertOne(doc: object): Promise<unknown>;
	insertMany(docs: object[], options: object): Promise<unknown>;
	findOne(query: object): Promise<any>;
	find(query: object): { limit(n: number): { toArray(): Promise<any[]> } };
	deleteMany(query: object): Promise<unknown>;
}

/** The documents a failed unordered MongoDB insertMany refused as duplicates, by index. */
function mongoDuplicates(err: unknown): Set<number> | null {
	const e = err as { writeErrors?: { index: number; code: number }[] };
	const refused = e.writeErrors;
	if (!Array.isArray(refused) || !refused.every(w => w.code === 11000)) return null;
	return new Set(refused.map(w => w.index));
}

/** What one store does for a side collection; `sideCollection` adds group commit on top. */
interface CollectionOps {
	/** Inserts all of `docs`; throws on a duplicate key (see InsertStore in lib/store/group-commit.ts). */
	insertMany(docs: object[]): Promise<unknown>;
	duplicatesOf(err: unknown): Set<number> | null;
	insertOne(doc: object): Promise<unknown>;
	removeMany(ids: string[]): Promise<unknown>;
	findById(id: string): Promise<any>;
	find(query: Record<string, unknown>, limit: number): Promise<any[]>;
}

function sideCollection(ops: CollectionOps): SideCollection {
	const insertOnce = createInsertBatcher<object>({
		insertMany: ops.insertMany,
		duplicatesOf: ops.duplicatesOf,
		insertOne: doc => insertedOnce(() => ops.insertOne(doc)),
		isDuplicate: isDuplicateKeyError
	});
	return {
		// Every record says the schema it was written at (docs/api.md, "Upgrades").
		insertOnce: doc => insertOnce({ ...doc, schemaVersion: SCHEMA_VERSION }),
		insertAllOnce: async docs =>
			void (await Promise.all(
				docs.map(doc => insertOnce({ ...doc, schemaVersion: SCHEMA_VERSION }))
			)),
		findById: id => ops.findById(id),
		find: (query, limit = 0) => ops.find(query, limit),
		removeById: createRemoveBatcher(ops.removeMany),
		removeLater: createRemoveBatcher(ops.removeMany, appConfig.cleanupDelayMs)
	};
}

function mongoSideCollection(collection: MongoCollection): SideCollection {
	return sideCollection({
		// Unordered: every new document goes in, and duplicates are reported without stopping it.
		insertMany: docs => collection.insertMany(docs, { ordered: false }),
		duplicatesOf: mongoDuplicates,
		insertOne: doc => collection.insertOne(doc),
		removeMany: ids => collection.deleteMany({ _id: { $in: ids } }),
		findById: id => collection.findOne({ _id: id }),
		find: (query, limit) => collection.find(query).limit(limit).toArray()
	});
}

/** NeDB's datastore, as much of it as the side collections use. */
interface NeDbDatastore {
	insertAsync(doc: object | object[]): Promise<unknown>;
	findOneAsync(query: object): Promise<unknown>;
	findAsync(query: object): { limit(n: number): Promise<unknown[]> } & Promise<unknown[]>;
	removeAsync(query: object, options: object): Promise<number>;
	compactDatafileAsync(): Promise<void>;
}

function nedbCollection(store: NeDbDatastore): SideCollection {
	const churn = compactAfterChurn(store);
	return sideCollection({
		// An array goes in with one append, all or nothing: after a duplicate, the batcher goes
		// one by one.
		insertMany: docs => store.insertAsync(docs),
		duplicatesOf: () => null,
		insertOne: doc => store.insertAsync(doc),
		removeMany: async ids => {
			await store.removeAsync({ _id: { $in: ids } }, { multi: true });
			churn(ids.length);
		},
		findById: id => store.findOneAsync({ _id: id }),
		find: (query, limit) => store.findAsync(query).limit(limit) as Promise<any[]>
	});
}

async function nedbSideCollection(filename: string | null): Promise<SideCollection> {
	const store = new Datastore(filename ? { filename, ...lineSafeSerialization } : {});
	await store.loadDatabaseAsync();
	keepAppendHandleOpen(store as unknown as Parameters<typeof keepAppendHandleOpen>[0]);
	return nedbCollection(store as unknown as NeDbDatastore);
}

/**
 * NeDB appends every update and removal to its file as a new line and only drops the old ones
 * when it compacts. Compacting after a number of such writes keeps a file near its live size
 * however much churn it sees; on load NeDB compacts anyway. Returns the "one more write" hook.
 */
function compactAfterChurn(store: { compactDatafileAsync(): Promise<void> }): (n?: number) => void {
	let writes = 0;
	return (n = 1) => {
		writes += n;
		if (writes < appConfig.nedbCompactAfterWrites) return;
		writes = 0;
		store.compactDatafileAsync().catch(() => undefined);
	};
}

/** Where a store lives; services take these from their settings so tests can point elsewhere. */
export interface StoreSettings {
	/** `null`: embedded NeDB. */
	mongoUri: string | null;
	/** `null` with NeDB: in memory only (unit tests). */
	dataDir: string | null;
	/** Prepended to MongoDB database names, to keep several systems apart on one server. */
	databasePrefix?: string;
}

export function defaultStoreSettings(): StoreSettings {
	return {
		mongoUri: appConfig.mongoUri,
		dataDir: appConfig.dataDir,
		databasePrefix: appConfig.mongoDatabasePrefix
	};
}

/** NeDB's datastore, as the NeDB adapter exposes it. */
interface NeDbStore {
	updateAsync?(
		query: Record<string, unknown>,
		update: Record<string, unknown>,
		options: Record<string, unknown>
	): Promise<{ numAffected: number }>;
	ensureIndexAsync?(opts: Record<string, unknown>): Promise<unknown>;
	compactDatafileAsync(): Promise<void>;
}

interface ClaimsCollection {
	insertOne(doc: Record<string, unknown>): Promise<unknown>;
	deleteOne(query: Record<string, unknown>): Promise<unknown>;
	deleteMany(query: Record<string, unknown>): Promise<unknown>;
}

/** A claim older than this belongs to a writer that died between claiming and writing. */
const STALE_CLAIM_MS = 10 * 1000;

const mongoDriverOptions = {
	useUnifiedTopology: true,
	// Fail a connection attempt quickly; moleculer-db's `started` retries every second.
	serverSelectionTimeoutMS: 5000,
	connectTimeoutMS: 5000
};

function storeDescription(store: StoreSettings, database: string): string {
	if (store.mongoUri) return `MongoDB database "${database}"`;
	return store.dataDir ? `NeDB in ${path.join(store.dataDir, database)}` : "NeDB in memory";
}

/**
 * An embedded store is one process's files: a second process writing to them would corrupt them.
 * The lock holds the owner's pid; a lock left by a dead process is taken over.
 */
function lockEmbeddedStore(folder: string): string {
	fs.mkdirSync(folder, { recursive: true });
	const lockFile = path.join(folder, "LOCK");
	for (let attempt = 0; attempt < 2; attempt++) {
		try {
			fs.writeFileSync(lockFile, String(process.pid), { flag: "wx" });
			return lockFile;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
		}
		const owner = Number(fs.readFileSync(lockFile, "utf8"));
		if (owner && owner !== process.pid && isAlive(owner))
			throw new Error(
				`The embedded store in ${folder} is already used by process ${owner}. ` +
					`An embedded NeDB store belongs to one process: stop the other one, ` +
					`give this one another DATA_DIR, or set MONGO_URI to run several instances.`
			);
		fs.rmSync(lockFile, { force: true });
	}
	throw new Error(`Could not lock the embedded store in ${folder}`);
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/**
 * NeDB keeps every document in memory and reads its whole file at start. Past some hundreds of
 * thousands of documents that is slow to start and heavy (measured in the README), and MongoDB is
 * the right home: say so at start.
 */
async function warnIfTooBigForEmbedded(
	service: { logger: { warn(message: string): void } },
	adapter: StoreAdapter,
	database: string
): Promise<void> {
	const documents = await adapter.count({});
	if (documents <= appConfig.embeddedWarnDocuments) return;
	service.logger.warn(
		`The embedded ${database} store holds ${documents.toLocaleString("en")} documents, ` +
			`past the ${appConfig.embeddedWarnDocuments.toLocaleString("en")} an embedded store ` +
			`is meant for: it is kept whole in memory and read whole at every start. ` +
			`Move to MongoDB (set MONGO_URI); see the README, "Where the embedded store ends".`
	);
}

export function createDbMixin(options: DbMixinOptions): Partial<ServiceSchema> {
	const schema: Partial<ServiceSchema> & Record<string, unknown> = {
		mixins: [DbService as unknown as ServiceSchema],

		// A store this node cannot reach is a dependency that is down here, maybe not elsewhere:
		// answer a retryable 503, so the caller's broker tries another instance (every step is
		// idempotent) and the client gets 503, never a 500.
		hooks: {
			error: {
				"*"(_ctx: unknown, err: Error) {
					throw STORE_UNREACHABLE.test(err?.name ?? "") ? storeUnavailable() : err;
				}
			}
		},
		collection: options.collection,

		actions: {
			list: false,
			find: false,
			count: false,
			create: false,
			insert: false,
			get: false,
			update: false,
			remove: false
		} as unknown as ServiceSchema["actions"],

		methods: {
			storeId(id: string): unknown {
				const adapter = this.adapter as StoreAdapter;
				return adapter.stringToObjectID ? adapter.stringToObjectID(id) : id;
			},
			toPlain(doc: unknown) {
				return (this.adapter as StoreAdapter).entityToObject(doc);
			},
			/*
			 * FerretDB runs a conditional update as read-then-write, so two writers can both pass a
			 * version check. An insert of a unique key is atomic on every MongoDB-wire store, so
			 * each version of a document is first claimed by inserting "<id>:<version>".
			 */
			async claimVersion(docId: string, version: number): Promise<boolean> {
				const claims = this.versionClaims as ClaimsCollection | null;
				if (!claims) return true;
				const now = Date.now();
				const claimed = await insertedOnce(() =>
					claims.insertOne({ _id: `${docId}:${version}`, at: now })
				);
				if (claimed) return true;
				// Taken: by a live writer (we lost, re-read), or by one that died before writing.
				await claims.deleteOne({
					_id: `${docId}:${version}`,
					at: { $lt: now - STALE_CLAIM_MS }
				});
				return false;
			},
			/*
			 * On NeDB, straight to the datastore: moleculer-db's wrapper of `update` makes Node build
			 * a deprecation warning (DEP0174) on every call, a few percent of a busy node's time.
			 */
			async updateWhere(query, update): Promise<number> {
				const adapter = this.adapter as StoreAdapter;
				const nedb = adapter.collection ? undefined : (adapter.db as NeDbStore | undefined);
				if (nedb?.updateAsync) {
					const { numAffected } = await nedb.updateAsync(query, update, { multi: true });
					(this.nedbChurn as (() => void) | undefined)?.();
					return numAffected;
				}
				return adapter.updateMany(query, update);
			},
			async dropClaim(docId: string, version: number): Promise<void> {
				const claims = this.versionClaims as ClaimsCollection | null;
				await claims?.deleteOne({ _id: `${docId}:${version}` });
			},
			async pruneClaim(docId: string, version: number): Promise<void> {
				const prune = this.claimPruner as ((id: string) => Promise<void>) | null;
				await prune?.(`${docId}:${version}`);
			}
		},

		// Runs after moleculer-db's own `created`, replacing its default in-memory adapter with a
		// fresh adapter per service instance (a schema-level adapter would be shared by every broker
		// that loads the schema).
		created() {
			const store: StoreSettings =
				(this.settings as { store?: StoreSettings }).store ?? defaultStoreSettings();
			let adapter: StoreAdapter;
			if (store.mongoUri) {
				adapter = new MongoAdapter(
					store.mongoUri,
					mongoDriverOptions,
					(store.databasePrefix ?? "") + options.database
				) as unknown as StoreAdapter;
			} else {
				const folder = store.dataDir ? path.join(store.dataDir, options.database) : null;
				this.storeLock = folder ? lockEmbeddedStore(folder) : null;
				this.storeFolder = folder;
				if (folder) {
					// Before NeDB reads them: a file an earlier release wrote may hold torn lines.
					const files = [options.collection, ...(options.sideCollections ?? [])];
					const check = checkDataFiles(
						files.map(name => path.join(folder, `${name}.db`)),
						this.logger
					);
					// In the registry, so that every node's /health and REPL can report it.
					Object.assign(this.metadata, {
						storeQuarantined: check.quarantined,
						storeQuarantineFiles: check.quarantineFiles
					});
				}
				adapter = new DbService.MemoryAdapter(
					folder
						? {
								filename: path.join(folder, `${options.collection}.db`),
								...lineSafeSerialization
							}
						: {}
				) as unknown as StoreAdapter;
			}
			adapter.init(this.broker, this);
			this.adapter = adapter;
			this.versionClaims = null;
			this.claimPruner = null;
			this.logger.info(`Store: ${storeDescription(store, options.database)}`);
		},

		async afterConnected(
			this: Service &
				DbMethods & {
					adapter: StoreAdapter;
					versionClaims: unknown;
					claimPruner: unknown;
					side: Record<string, SideCollection>;
					storeFolder?: string | null;
					nedbChurn?: () => void;
				}
		) {
			const adapter = this.adapter;
			const mongoDb = adapter.db as { collection?(name: string): any } | undefined;
			if (adapter.collection && mongoDb?.collection) {
				const claims: ClaimsCollection = mongoDb.collection(`${options.collection}_claims`);
				this.versionClaims = claims;
				this.claimPruner = createRemoveBatcher(
					ids => claims.deleteMany({ _id: { $in: ids } }),
					appConfig.cleanupDelayMs
				);
			}
			// The main collection too, for insert-once records with group commit (string ids only).
			this.side = {
				[options.collection]: adapter.collection
					? mongoSideCollection(adapter.collection as unknown as MongoCollection)
					: nedbCollection(adapter.db as NeDbDatastore)
			};
			for (const name of options.sideCollections ?? []) {
				if (adapter.collection && mongoDb?.collection) {
					const collection = mongoDb.collection(name);
					for (const field of options.sideIndexes?.[name] ?? [])
						await collection.createIndex({ [field]: 1 });
					this.side[name] = mongoSideCollection(collection);
				} else
					this.side[name] = await nedbSideCollection(
						this.storeFolder
							? path.join(this.storeFolder as string, `${name}.db`)
							: null
					);
			}
			const nedb = adapter.collection ? undefined : (adapter.db as NeDbStore | undefined);
			for (const index of options.indexes ?? []) {
				if (adapter.collection) {
					await adapter.collection.createIndex(index.fields, { unique: !!index.unique });
				} else if (nedb?.ensureIndexAsync) {
					for (const fieldName of Object.keys(index.fields))
						await nedb.ensureIndexAsync({ fieldName, unique: !!index.unique });
				}
			}
			if (nedb && this.storeFolder) {
				keepAppendHandleOpen(nedb as unknown as Parameters<typeof keepAppendHandleOpen>[0]);
				this.nedbChurn = compactAfterChurn(nedb);
				await warnIfTooBigForEmbedded(this, adapter, options.database);
			}

			if (options.seed && (await adapter.count({})) === 0) {
				const docs = options
					.seed()
					.map(doc => ({ ...doc, _id: this.storeId(String(doc._id)) }));
				await adapter.insertMany(docs);
				this.logger.info(`Seeded ${docs.length} documents into an empty store`);
			}
		},

		async stopped() {
			await closeAppendHandles();
			if (this.storeLock) fs.rmSync(this.storeLock as string, { force: true });
		}
	};
	return schema;
}
