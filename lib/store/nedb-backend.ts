/**
 * The embedded NeDB store backend: one folder per service under DATA_DIR (or memory only, for unit
 * tests), locked to one process. Its files are checked and repaired before NeDB reads them, every
 * line is written line-safe, appends go through a kept-open handle, and a file is compacted after
 * enough churn. A version claim is always granted: the store belongs to this process alone.
 */
import fs from "node:fs";
import path from "node:path";
import Datastore from "@seald-io/nedb";
import DbService from "moleculer-db";
import { appConfig } from "../common/config";
import { isAlive } from "./embedded-store-owner";
import { closeAppendHandles, keepAppendHandleOpen } from "./nedb-appender";
import { checkDataFiles, lineSafeSerialization } from "./nedb-lines";
import { sideCollection } from "./side-collections";
import type {
	SideCollection,
	StoreAdapter,
	StoreBackendFactory,
	StoreBackendKind,
	StoreOwner
} from "./store-api";

/** NeDB's datastore, as much of it as this backend uses. */
interface NeDbDatastore {
	insertAsync(doc: object | object[]): Promise<unknown>;
	findOneAsync(query: object): Promise<unknown>;
	findAsync(query: object): { limit(n: number): Promise<unknown[]> } & Promise<unknown[]>;
	removeAsync(query: object, options: object): Promise<number>;
	updateAsync(query: object, update: object, options: object): Promise<{ numAffected: number }>;
	ensureIndexAsync(opts: object): Promise<unknown>;
	compactDatafileAsync(): Promise<void>;
	loadDatabaseAsync(): Promise<void>;
}

type AppendHandleStore = Parameters<typeof keepAppendHandleOpen>[0];

/**
 * NeDB appends every update and removal to its file as a new line and only drops the old ones
 * when it compacts. Compacting after a number of such writes keeps a file near its live size
 * however much churn it sees; on load NeDB compacts anyway. Returns the "n more writes" hook.
 */
function compactAfterChurn(store: NeDbDatastore): (n?: number) => void {
	let writes = 0;
	return (n = 1) => {
		writes += n;
		if (writes < appConfig.nedbCompactAfterWrites) return;
		writes = 0;
		store.compactDatafileAsync().catch(() => undefined);
	};
}

function nedbSideCollection(store: NeDbDatastore): SideCollection {
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

/**
 * NeDB keeps every document in memory and reads its whole file at start. Past some hundreds of
 * thousands of documents that is slow to start and heavy, and MongoDB is the right home: say so.
 */
async function warnIfTooBig(owner: StoreOwner, adapter: StoreAdapter, database: string) {
	const documents = await adapter.count({});
	if (documents <= appConfig.embeddedWarnDocuments) return;
	owner.logger.warn(
		`The embedded ${database} store holds ${documents.toLocaleString("en")} documents, ` +
			`past the ${appConfig.embeddedWarnDocuments.toLocaleString("en")} an embedded store ` +
			`is meant for: it is kept whole in memory and read whole at every start. ` +
			`Move to MongoDB (set MONGO_URI); see docs/design.md, "Where the embedded store ends".`
	);
}

const createNedbBackend: StoreBackendFactory = (settings, layout, owner) => {
	const folder = settings.dataDir ? path.join(settings.dataDir, layout.database) : null;
	const lock = folder ? lockEmbeddedStore(folder) : null;
	const fileOf = (name: string) => (folder ? path.join(folder, `${name}.db`) : null);
	if (folder) {
		// Before NeDB reads them: a file an earlier release wrote may hold torn lines.
		const files = [layout.collection, ...(layout.sideCollections ?? [])];
		const check = checkDataFiles(files.map(fileOf) as string[], owner.logger);
		// In the registry, so that every node's /health and REPL can report it.
		Object.assign(owner.metadata, {
			storeQuarantined: check.quarantined,
			storeQuarantineFiles: check.quarantineFiles
		});
	}
	const mainFile = fileOf(layout.collection);
	const adapter = new DbService.MemoryAdapter(
		mainFile ? { filename: mainFile, ...lineSafeSerialization } : {}
	) as unknown as StoreAdapter & { db: NeDbDatastore };
	let churn: (n?: number) => void = () => undefined;
	return {
		description: folder ? `NeDB in ${folder}` : "NeDB in memory",
		adapter,
		async open() {
			const main = adapter.db;
			const side = { [layout.collection]: nedbSideCollection(main) };
			for (const name of layout.sideCollections ?? []) {
				const file = fileOf(name);
				const store = new Datastore(
					file ? { filename: file, ...lineSafeSerialization } : {}
				) as unknown as NeDbDatastore;
				await store.loadDatabaseAsync();
				if (file) keepAppendHandleOpen(store as unknown as AppendHandleStore);
				side[name] = nedbSideCollection(store);
			}
			for (const index of layout.indexes ?? [])
				for (const fieldName of Object.keys(index.fields))
					await main.ensureIndexAsync({ fieldName, unique: !!index.unique });
			if (folder) {
				keepAppendHandleOpen(main as unknown as AppendHandleStore);
				churn = compactAfterChurn(main);
				await warnIfTooBig(owner, adapter, layout.database);
			}
			return side;
		},
		claimVersion: async () => true,
		dropClaim: async () => undefined,
		pruneClaim: async () => undefined,
		/*
		 * Straight to the datastore: moleculer-db's wrapper of `update` makes Node build a
		 * deprecation warning (DEP0174) on every call, a few percent of a busy node's time.
		 */
		async updateWhere(query, update) {
			const { numAffected } = await adapter.db.updateAsync(query, update, { multi: true });
			churn();
			return numAffected;
		},
		storeId: id => id,
		async close() {
			await closeAppendHandles();
			if (lock) fs.rmSync(lock, { force: true });
		}
	};
};

/** Files on this machine: nothing to be cut off from. */
export const NEDB_BACKEND: StoreBackendKind = {
	create: createNedbBackend,
	isUnreachable: () => false
};
