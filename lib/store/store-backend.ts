/**
 * The store backends by name, resolved as Moleculer resolves its cachers and transporters: a new
 * store is one more implementation of `StoreBackend` (lib/store/store-api.ts) and one entry here.
 */
import { appConfig } from "../common/config";
import { MONGO_BACKEND } from "./mongo-backend";
import { NEDB_BACKEND } from "./nedb-backend";
import type { StoreBackendFactory, StoreBackendKind, StoreSettings } from "./store-api";

export function defaultStoreSettings(): StoreSettings {
	return {
		mongoUri: appConfig.mongoUri,
		dataDir: appConfig.dataDir,
		databasePrefix: appConfig.mongoDatabasePrefix
	};
}

export const STORE_BACKENDS = { mongo: MONGO_BACKEND, nedb: NEDB_BACKEND } satisfies Record<
	string,
	StoreBackendKind
>;

/** The backend a store's settings name: MongoDB when it has a URI, else embedded NeDB. */
export function resolveStoreBackend(settings: StoreSettings): StoreBackendFactory {
	return STORE_BACKENDS[settings.mongoUri ? "mongo" : "nedb"].create;
}

/**
 * An error by which a store driver says it cannot reach its store: a retryable 503, so that the
 * caller's broker tries another instance, which may reach it.
 */
export function isStoreUnreachable(err: unknown): boolean {
	return Object.values(STORE_BACKENDS).some(kind => kind.isUnreachable(err));
}
