/**
 * What a service's store offers to the domain code in lib/, and the seam between the db mixin and
 * a store: a `StoreBackend` does for one service's database whatever differs between stores (its
 * adapter, side collections, version claims, conditional updates, indexes, what "unreachable"
 * looks like), implemented once for NeDB and once for MongoDB (lib/store/*-backend.ts).
 */

interface IndexSpec {
	fields: Record<string, 1 | -1>;
	unique?: boolean;
}

/**
 * A collection that is only ever inserted into, read by `_id` or scanned while small, and removed
 * from. FerretDB 1.24 (SQLite) runs every update as a scan of the whole collection, so records that
 * grow with sales are written once and never updated; what changes is recorded as new documents.
 */
export interface SideCollection {
	/** Inserts `doc` unless its `_id` exists: true if this call inserted it. */
	insertOnce(doc: Record<string, unknown> & { _id: string }): Promise<boolean>;
	/** Inserts each of `docs` whose `_id` does not exist yet, in one round trip when none does. */
	insertAllOnce(docs: (object & { _id: string })[]): Promise<void>;
	findById<T>(id: string): Promise<T | null>;
	find<T>(query: Record<string, unknown>, limit?: number): Promise<T[]>;
	removeById(id: string): Promise<void>;
	/**
	 * Removes a finished to-do entry that nobody waits on, gathered with others for
	 * STORE_CLEANUP_DELAY_MS so that a busy node removes many in one store write.
	 */
	removeLater(id: string): Promise<void>;
}

/** Any adapter we use: moleculer-db's NeDB one or the Mongo one, with what each exposes. */
export interface StoreAdapter {
	find(filters: Record<string, unknown>): Promise<any[]>;
	findOne(query: Record<string, unknown>): Promise<any>;
	findById(id: unknown): Promise<any>;
	insert(doc: Record<string, unknown>): Promise<any>;
	insertMany(docs: Record<string, unknown>[]): Promise<any[]>;
	updateMany(query: Record<string, unknown>, update: Record<string, unknown>): Promise<number>;
	count(filters?: Record<string, unknown>): Promise<number>;
	connect(): Promise<void>;
	disconnect(): Promise<void>;
	init(broker: unknown, service: unknown): void;
	entityToObject(doc: any): any;
	stringToObjectID?: (id: string) => unknown;
	collection?: {
		createIndex(
			fields: Record<string, number>,
			opts: Record<string, unknown>
		): Promise<unknown>;
	};
	/** The Mongo adapter's database handle, or the NeDB adapter's datastore. */
	db?: unknown;
}

export interface DbMethods {
	/**
	 * Claims the right to write version `version` of document `docId`; only one writer ever gets
	 * a given claim. A no-op on NeDB, whose store belongs to one process.
	 */
	claimVersion(docId: string, version: number): Promise<boolean>;
	/** Gives a claim back after the write it was for did not happen. */
	dropClaim(docId: string, version: number): Promise<void>;
	/** Removes, a little later and with others, a claim whose version has been written over. */
	pruneClaim(docId: string, version: number): Promise<void>;
	/** Updates the documents matching `query`; resolves to how many it changed. */
	updateWhere(query: Record<string, unknown>, update: Record<string, unknown>): Promise<number>;
	/** The store's form of an id: an ObjectId for 24-hex strings on MongoDB, the string otherwise. */
	storeId(id: string): unknown;
	/** Stored document to plain object with a string `_id`. */
	toPlain<T>(doc: unknown): T;
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

/** What the service's store holds: its database, main collection, side collections, indexes. */
export interface StoreLayout {
	/** Database name with MongoDB, folder name under DATA_DIR with NeDB. */
	database: string;
	collection: string;
	indexes?: IndexSpec[];
	/** More collections of the same database, written only by inserts and removals. */
	sideCollections?: string[];
	/** Fields to index in side collections, where the store indexes them. */
	sideIndexes?: Record<string, string[]>;
}

/** What a backend needs of the service whose store it opens. */
export interface StoreOwner {
	logger: { info(message: string): void; warn(message: string): void };
	/** The service's registry metadata, where a backend may report on its store. */
	metadata: Record<string, unknown>;
}

export interface StoreBackend {
	/** For the start-up log: which store, where. */
	readonly description: string;
	/** moleculer-db's adapter for the main collection. */
	readonly adapter: StoreAdapter;
	/** Once the adapter is connected: side collections, indexes, version claims. */
	open(): Promise<Record<string, SideCollection>>;
	/**
	 * Claims the right to write version `version` of document `docId`; only one writer ever gets a
	 * given claim. Always granted on a store that belongs to one process.
	 */
	claimVersion(docId: string, version: number): Promise<boolean>;
	dropClaim(docId: string, version: number): Promise<void>;
	/** Removes, a little later and with others, a claim whose version has been written over. */
	pruneClaim(docId: string, version: number): Promise<void>;
	/** Updates the documents matching `query`; resolves to how many it changed. */
	updateWhere(query: Record<string, unknown>, update: Record<string, unknown>): Promise<number>;
	/** The store's form of an id (an ObjectId for 24 hex digits on MongoDB). */
	storeId(id: string): unknown;
	close(): Promise<void>;
}

export type StoreBackendFactory = (
	settings: StoreSettings,
	layout: StoreLayout,
	owner: StoreOwner
) => StoreBackend;

/** A kind of store: how to open one, and how its driver says that it cannot be reached. */
export interface StoreBackendKind {
	create: StoreBackendFactory;
	/** An error that means this node cannot reach its store now (another node may). */
	isUnreachable(err: unknown): boolean;
}
