/**
 * Prepares an embedded shows store with many shows before the system starts, by writing the NeDB
 * file directly: DATA_DIR/shows/shows.db, one JSON document per line, in the shape that
 * lib/shows/show-store.ts (seedShows) gives the service's own seed documents. The three demo shows are
 * always among them (with their original ids, so they sort first), so the store holds exactly
 * `count` shows and the service, finding it non-empty, seeds nothing.
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const DEMO_SHOWS = [
	{ _id: "5b805a00297ae6047030f2e0", name: "Rock Concert", houseSize: 100, presold: 0 },
	{ _id: "5b805a570cee1505a52bc75d", name: "Shakespeare Play", houseSize: 50, presold: 0 },
	{ _id: "5b805a790cee1505a52bc75e", name: "Monster Truck Rally", houseSize: 500, presold: 500 }
];

function showDoc({ _id, name, houseSize, presold }, now) {
	return {
		_id,
		name,
		houseSize,
		presold,
		reserved: presold,
		holds: [],
		nextExpiry: null,
		version: 1,
		createdAt: now,
		updatedAt: now
	};
}

/** Writes `count` shows (count ≥ 3) into DATA_DIR/shows/shows.db; returns the file's path. */
function seedShowsStore(dataDir, count) {
	if (count < DEMO_SHOWS.length) throw new Error(`seed at least ${DEMO_SHOWS.length} shows`);
	const folder = path.join(dataDir, "shows");
	fs.mkdirSync(folder, { recursive: true });
	const file = path.join(folder, "shows.db");
	const now = Date.now();
	// ObjectId-like ids: 4 bytes of time, then a counter; all sort after the demo shows' ids.
	const time = Math.floor(now / 1000)
		.toString(16)
		.padStart(8, "0");
	const lines = DEMO_SHOWS.map(s => JSON.stringify(showDoc(s, now)));
	for (let i = DEMO_SHOWS.length; i < count; i++) {
		const _id = time + i.toString(16).padStart(16, "0");
		const houseSize = 50 + (i % 20) * 50;
		lines.push(
			JSON.stringify(showDoc({ _id, name: `Show ${i + 1}`, houseSize, presold: 0 }, now))
		);
	}
	fs.writeFileSync(file, lines.join("\n") + "\n");
	return file;
}

/**
 * Puts `count` finished reservations (confirmed, then canceled, seats given back) into the
 * reservations database of a MongoDB-wire server before the cluster starts: the state of a store
 * that has served that many checkout+cancel pairs. Mirrors the layout services/reservations.service.ts
 * writes (as of commit 5e02118): the booking in `reservations`, and the facts `<id>:outcome` and
 * `<id>:canceled` in `reservation_states`; the to-do lists (`open_checkouts`, `seat_releases`) are
 * empty once a pair is done. Re-check it when that layout changes.
 */
async function seedReservations(mongoUri, count, databasePrefix = "") {
	const { MongoClient } = require("mongodb");
	const client = await MongoClient.connect(mongoUri, { useUnifiedTopology: true });
	try {
		const db = client.db(`${databasePrefix}reservations`);
		const bookings = db.collection("reservations");
		const facts = db.collection("reservation_states");
		const at = Date.now() - 86400000;
		for (let done = 0; done < count;) {
			const batch = [];
			const batchFacts = [];
			for (let i = 0; i < 1000 && done < count; i++, done++) {
				const id = `seed${done.toString(16).padStart(28, "0")}`;
				batch.push({
					_id: id,
					showID: DEMO_SHOWS[0]._id,
					name: "Seeded",
					guests: 1,
					fingerprint: "seed",
					createdAt: at
				});
				batchFacts.push(
					{ _id: `${id}:outcome`, reservation: id, status: "confirmed", at },
					{ _id: `${id}:canceled`, reservation: id, status: "canceled", at }
				);
			}
			await bookings.insertMany(batch, { ordered: false });
			await facts.insertMany(batchFacts, { ordered: false });
		}
	} finally {
		await client.close();
	}
}

module.exports = { seedShowsStore, seedReservations };
