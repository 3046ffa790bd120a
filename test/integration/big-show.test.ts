/**
 * A show sold out over HTTP at a real size, on each store: an operator adds a 3,000-seat show, 32
 * buyers of 10 seats sell it out, and the show's document stays the size of the checkouts in
 * flight however many seats are sold. Then the first sale is canceled, long after and behind all
 * the others: its seats go back exactly once.
 */
import fs from "node:fs";
import path from "node:path";
import type { ServiceBroker } from "moleculer";
import { httpCall, jsonBody } from "../support/http";
import { openStores, operatorNode } from "../support/probe";
import { startCluster, waitForHealthy, type Cluster } from "../support/system";

const HOUSE = 3000;
const PER_ORDER = 10;
const BUYERS = 32;
/** Every buyer's hold in the document at once, about 110 bytes each, plus the show's fields. */
const DOCUMENT_BOUND = BUYERS * 2 * 128 + 1024;

/** The largest the show's document has been: NeDB keeps every version as a line of its file. */
function largestNedbDocument(dataDir: string, showID: string): number {
	const file = path.join(dataDir, "shows", "shows.db");
	return Math.max(
		...fs
			.readFileSync(file, "utf8")
			.split("\n")
			.filter(line => line.includes(showID))
			.map(line => Buffer.byteLength(line))
	);
}

describe.each([
	["embedded NeDB", false],
	["FerretDB, shows ×2", true]
])("a 3,000-seat show on %s", (_name, mongo) => {
	let cluster: Cluster;
	let operator: ServiceBroker;

	beforeAll(async () => {
		cluster = await startCluster({ mongo, env: { MAX_TICKETS_PER_ORDER: "10" } });
		if (mongo)
			await Promise.all([
				cluster.add({ services: "shows" }),
				cluster.add({ services: "shows" }),
				cluster.add({ services: "reservations,api" })
			]);
		else await cluster.add({ services: "shows,reservations,api" });
		await waitForHealthy(cluster.baseUrl, cluster.nodes[0]);
		operator = await operatorNode(cluster);
	}, 60000);

	afterAll(async () => {
		await operator?.stop();
		await cluster?.stop();
	});

	it("sells out exactly, no 5xx, with a bounded document; the first sale cancels once, long after", async () => {
		const show = (await operator.call("shows.create", {
			name: "Stadium",
			houseSize: HOUSE
		})) as { _id: string };
		const stores = mongo ? await openStores(cluster) : null;
		let largest = 0;
		const sample = async () => {
			const doc = await stores?.seatsOf(show._id);
			if (doc) largest = Math.max(largest, Buffer.byteLength(JSON.stringify(doc.show)));
		};

		const booked: string[] = [];
		const statuses: Record<number, number> = {};
		let soldOut = false;
		const buyer = async () => {
			while (!soldOut) {
				const answer = await httpCall(
					cluster.baseUrl,
					"POST",
					"/reserve",
					jsonBody({ name: "Fan", count: PER_ORDER, showID: show._id })
				);
				statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
				if (answer.status === 201) booked.push(answer.body._id);
				else if (answer.status === 409) soldOut = true;
				else if (answer.status !== 503) throw new Error(JSON.stringify(answer.body));
				if (booked.length % 25 === 0) await sample();
			}
		};
		try {
			await Promise.all(Array.from({ length: BUYERS }, buyer));
			await sample();
			expect(Object.keys(statuses).filter(s => Number(s) >= 500 && s !== "503")).toEqual([]);
			expect(booked.length * PER_ORDER).toBe(HOUSE);
			const after = await httpCall(cluster.baseUrl, "GET", `/shows/${show._id}`);
			expect(after.body).toMatchObject({ reserved: HOUSE, available: 0 });
			if (stores) {
				const { soldSeats, liveHolds } = await stores.seatsOf(show._id);
				expect(soldSeats).toBe(HOUSE);
				expect(liveHolds).toEqual([]);
			} else largest = largestNedbDocument(cluster.env.DATA_DIR, show._id);
			expect(largest).toBeGreaterThan(0);
			expect(largest).toBeLessThan(DOCUMENT_BOUND);

			for (let i = 0; i < 3; i++) {
				const canceled = await httpCall(
					cluster.baseUrl,
					"DELETE",
					`/reservations/${booked[0]}`
				);
				expect(canceled.status).toBe(200);
			}
			const reopened = await httpCall(cluster.baseUrl, "GET", `/shows/${show._id}`);
			expect(reopened.body).toMatchObject({
				reserved: HOUSE - PER_ORDER,
				available: PER_ORDER
			});
		} finally {
			await stores?.close();
		}
	}, 240000);
});
