/**
 * What refused checkouts leave on disk, on the embedded NeDB files of the system as `npm start`
 * runs it: a refusal decided before any seat is held (unknown show, sold out) leaves no record in
 * either store, with or without an Idempotency-Key; a keyed one leaves only its key's record.
 */
import fs from "node:fs";
import path from "node:path";
import { httpCall, jsonBody } from "../support/http";
import { startEmbedded } from "../support/system";

const UNKNOWN_SHOW = "0123456789abcdef01234567";
const RALLY = "5b805a790cee1505a52bc75e";
const ROCK = "5b805a00297ae6047030f2e0";
const REFUSALS = 20;

let system: Awaited<ReturnType<typeof startEmbedded>>;

const checkout = (showID: string, key?: string) =>
	httpCall(
		system.baseUrl,
		"POST",
		"/reserve",
		jsonBody({ showID, name: "Refused Rita", count: 2 }, key ? { "Idempotency-Key": key } : {})
	);

/** Documents alive in a NeDB file: its lines replayed, a deletion line removing its document. */
function liveDocuments(file: string): number {
	const docs = new Set<string>();
	for (const line of fs.readFileSync(file, "utf8").split("\n")) {
		if (!line.trim()) continue;
		const doc = JSON.parse(line) as { _id?: string; $$deleted?: boolean };
		if (doc._id === undefined) continue; // an index definition
		if (doc.$$deleted) docs.delete(doc._id);
		else docs.add(doc._id);
	}
	return docs.size;
}

function storeFiles(): string[] {
	return ["shows", "reservations"].flatMap(dir =>
		fs.readdirSync(path.join(system.dataDir, dir)).map(f => path.join(dir, f))
	);
}

/** Live documents per store file, once the stores are at rest (housekeeping removals included). */
async function liveCounts(): Promise<Record<string, number>> {
	const sizes = () =>
		storeFiles()
			.map(f => `${f}:${fs.statSync(path.join(system.dataDir, f)).size}`)
			.join();
	let last = sizes();
	for (let still = 0; still < 5;) {
		await new Promise(resolve => setTimeout(resolve, 100));
		const now = sizes();
		still = now === last ? still + 1 : 0;
		last = now;
	}
	return Object.fromEntries(
		storeFiles().map(f => [f, liveDocuments(path.join(system.dataDir, f))])
	);
}

beforeAll(async () => {
	system = await startEmbedded({ STORE_CLEANUP_DELAY_MS: "100", SHOWS_CACHE_TTL_MS: "0" });
	// One booking, so that every collection's file exists before the counting starts.
	const booked = await checkout(ROCK, "warm-up");
	expect(booked.status).toBe(201);
});

afterAll(async () => {
	await system?.node.stop();
});

describe("refused checkouts on disk", () => {
	it("an unknown show without a key leaves no record in either store", async () => {
		const before = await liveCounts();
		for (let i = 0; i < REFUSALS; i++) expect((await checkout(UNKNOWN_SHOW)).status).toBe(404);
		expect(await liveCounts()).toEqual(before);
	});

	it("with a key, an unknown show or a sold-out one leaves only the key's record", async () => {
		const before = await liveCounts();
		for (let i = 0; i < REFUSALS; i++) {
			expect((await checkout(UNKNOWN_SHOW, `unknown-${i}`)).status).toBe(404);
			expect((await checkout(RALLY, `sold-out-${i}`)).status).toBe(409);
		}
		const keys = path.join("reservations", "idempotency_keys.db");
		expect(await liveCounts()).toEqual({ ...before, [keys]: before[keys] + 2 * REFUSALS });
	});

	it("a refused key's retry is refused again and still leaves only that key's record", async () => {
		const before = await liveCounts();
		for (let i = 0; i < 3; i++)
			expect((await checkout(RALLY, "sold-out-again")).status).toBe(409);
		const keys = path.join("reservations", "idempotency_keys.db");
		expect(await liveCounts()).toEqual({ ...before, [keys]: before[keys] + 1 });
	});
});
