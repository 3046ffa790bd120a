/**
 * A store a node cannot reach is answered as a retryable 503 by every store-owning service (the db
 * mixin's error hook), so the caller's broker tries another instance and a client never sees a 500.
 */
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { createDbMixin } from "../../mixins/db.mixin";
import { describeError } from "../../lib/gateway/http-errors";
import { MEMORY_STORE, startBroker } from "./helpers";

function driverError(name: string): Error {
	const err = new Error("connect ECONNREFUSED 127.0.0.1:27017");
	err.name = name;
	return err;
}

describe("store errors", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		const schema: ServiceSchema = {
			name: "ledger",
			mixins: [createDbMixin({ database: "ledger", collection: "ledger" }) as ServiceSchema],
			settings: { store: MEMORY_STORE } as ServiceSchema["settings"],
			actions: {
				unreachable: () => Promise.reject(driverError("MongoServerSelectionError")),
				timedOut: () => Promise.reject(driverError("MongoNetworkTimeoutError")),
				refused: () => Promise.reject(new Error("a bug, not the store"))
			}
		};
		broker = await startBroker([schema]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it.each(["unreachable", "timedOut"])(
		"%s: a retryable 503 STORE_UNAVAILABLE that names nothing of the store",
		async action => {
			const err = await broker.call(`ledger.${action}`).catch((e: Error) => e);
			expect(err).toMatchObject({ code: 503, type: "STORE_UNAVAILABLE", retryable: true });
			expect((err as Error).message).not.toContain("27017");
			expect(describeError(err as Error).status).toBe(503);
		}
	);

	it("other errors pass through as they are", async () => {
		await expect(broker.call("ledger.refused")).rejects.toThrow("a bug, not the store");
	});
});
