/**
 * A store written by the version that kept every sale inside the show document keeps working after
 * the upgrade: at start, each such show's sales are moved out of its document (one record each, the
 * seats into `sold`), idempotently, and safely when two nodes start at once on one store. The
 * fixture is the documents that version wrote (test/fixtures/store-v1.json).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MongoClient, ObjectId } from "mongodb";
import { httpCall } from "../support/http";
import { startCluster, startEmbedded, waitForHealthy } from "../support/system";
import { openStores } from "../support/probe";

const fixture = JSON.parse(
	fs.readFileSync(path.join(__dirname, "..", "fixtures", "store-v1.json"), "utf8")
);
const ROCK = "5b805a00297ae6047030f2e0";
const SOLD = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/** What a client sees of the old store after the upgrade, and a cancel of the old sale. */
async function expectOldSaleServed(baseUrl: string) {
	const show = await httpCall(baseUrl, "GET", `/shows/${ROCK}`);
	// The sale of 5 still counts; the abandoned hold's deadline has long passed.
	expect(show.body).toMatchObject({ reserved: 5, available: 95 });
	const reservation = await httpCall(baseUrl, "GET", `/reservations/${SOLD}`);
	expect(reservation.body).toMatchObject({ status: "confirmed", guests: 5 });

	for (let i = 0; i < 2; i++) {
		const canceled = await httpCall(baseUrl, "DELETE", `/reservations/${SOLD}`);
		expect(canceled.status).toBe(200);
		expect((await httpCall(baseUrl, "GET", `/shows/${ROCK}`)).body).toMatchObject({
			reserved: 0,
			available: 100
		});
	}
}

function nedbLines(docs: object[]): string {
	return docs.map(doc => JSON.stringify(doc)).join("\n") + "\n";
}

it("an embedded store from the previous version is migrated at start and its old sale cancels once", async () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tickets-v1-"));
	fs.mkdirSync(path.join(dataDir, "shows"));
	fs.mkdirSync(path.join(dataDir, "reservations"));
	fs.writeFileSync(path.join(dataDir, "shows", "shows.db"), nedbLines(fixture.shows));
	for (const name of ["reservations", "reservation_states"])
		fs.writeFileSync(
			path.join(dataDir, "reservations", `${name}.db`),
			nedbLines(fixture[name])
		);

	const system = await startEmbedded({ DATA_DIR: dataDir });
	try {
		const lines = fs
			.readFileSync(path.join(dataDir, "shows", "shows.db"), "utf8")
			.trim()
			.split("\n");
		const rock = lines
			.map(line => JSON.parse(line))
			.filter(doc => doc._id === ROCK)
			.pop();
		expect(rock).toMatchObject({ sold: 5, holds: [], reserved: 5 });
		const sales = fs.readFileSync(path.join(dataDir, "shows", "show_sales.db"), "utf8");
		expect(sales).toContain(SOLD);
		await expectOldSaleServed(system.baseUrl);
	} finally {
		await system.node.stop();
	}
});

it("two shows nodes starting at once on a MongoDB-wire store from the previous version migrate it exactly once", async () => {
	const cluster = await startCluster({ env: { SWEEP_INTERVAL_MS: "500" } });
	const client = new MongoClient(cluster.env.MONGO_URI, { useUnifiedTopology: true } as object);
	try {
		await client.connect();
		const prefix = cluster.env.MONGO_DB_PREFIX ?? "";
		await client
			.db(`${prefix}shows`)
			.collection("shows")
			.insertMany(fixture.shows.map((s: any) => ({ ...s, _id: new ObjectId(s._id) })));
		const reservations = client.db(`${prefix}reservations`);
		await reservations.collection("reservations").insertMany(fixture.reservations);
		await reservations.collection("reservation_states").insertMany(fixture.reservation_states);

		await Promise.all([
			cluster.add({ services: "shows" }),
			cluster.add({ services: "shows" }),
			cluster.add({ services: "reservations,api" })
		]);
		await waitForHealthy(cluster.baseUrl, cluster.nodes[0]);

		const stores = await openStores(cluster);
		try {
			const { show, soldIds, soldSeats, liveHolds } = await stores.seatsOf(ROCK);
			expect(show).toMatchObject({ sold: 5, reserved: 5 });
			expect(liveHolds).toEqual([]);
			expect(soldIds).toEqual(new Set([SOLD]));
			expect(soldSeats).toBe(5);
			expect(await stores.showSales.countDocuments({})).toBe(1);
		} finally {
			await stores.close();
		}
		await expectOldSaleServed(cluster.baseUrl);
	} finally {
		await client.close();
		await cluster.stop();
	}
});
