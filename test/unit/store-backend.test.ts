/**
 * Stores are reached through one seam (lib/store/store-backend.ts): the backend is resolved by the
 * store's settings, and a driver's "cannot reach" errors are known by whichever backend raised them.
 */
import {
	isStoreUnreachable,
	resolveStoreBackend,
	STORE_BACKENDS
} from "../../lib/store/store-backend";

it("resolves MongoDB for a store with a URI and NeDB for one without", () => {
	expect(resolveStoreBackend({ mongoUri: "mongodb://127.0.0.1:1", dataDir: null })).toBe(
		STORE_BACKENDS.mongo.create
	);
	expect(resolveStoreBackend({ mongoUri: null, dataDir: null })).toBe(STORE_BACKENDS.nedb.create);
});

it("opens an in-memory NeDB store that grants every version claim (one process owns it)", async () => {
	const owner = { logger: { info: () => undefined, warn: () => undefined }, metadata: {} };
	const store = STORE_BACKENDS.nedb.create(
		{ mongoUri: null, dataDir: null },
		{ database: "probe", collection: "probe", sideCollections: ["notes"] },
		owner
	);
	expect(store.description).toBe("NeDB in memory");
	await store.adapter.connect();
	const side = await store.open();
	expect(Object.keys(side).sort()).toEqual(["notes", "probe"]);
	expect(await side.notes.insertOnce({ _id: "a" })).toBe(true);
	expect(await side.notes.insertOnce({ _id: "a" })).toBe(false);
	expect(await store.claimVersion("x", 1)).toBe(true);
	await store.close();
});

it("knows a MongoDB driver's unreachable errors, and nothing else, as unreachable", () => {
	const named = (name: string) => Object.assign(new Error("connect ECONNREFUSED"), { name });
	expect(isStoreUnreachable(named("MongoServerSelectionError"))).toBe(true);
	expect(isStoreUnreachable(named("MongoNetworkTimeoutError"))).toBe(true);
	expect(isStoreUnreachable(new Error("a bug"))).toBe(false);
});
