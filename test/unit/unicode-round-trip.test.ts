/**
 * Any text round-trips through the embedded store and a restart, byte for byte. NeDB's reader
 * breaks lines at U+0085, U+2028 and U+2029, which JSON leaves raw: before, a record holding one
 * was torn in two on disk and lost (or the store refused to start). Property tests over arbitrary
 * Unicode, with a modest case count to keep the suite fast: 200 strings straight through NeDB,
 * and 25 runs of up to 6 names each through the checkout and a restart of the services.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Datastore from "@seald-io/nedb";
import fc from "fast-check";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { keepAppendHandleOpen } from "../../lib/store/nedb-appender";
import { lineSafeSerialization } from "../../lib/store/nedb-lines";
import { anyName, bookEach, expectReadBack } from "../support/unicode-names";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "./helpers";

/** Restarts in every run: generous, since a loaded machine (CI beside other work) is slow. */
const PROPERTY_TIMEOUT_MS = 240000;

const STORE_RUNS = 200;
const SERVICE_RUNS = 25;

let dir: string;

beforeAll(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), "unicode-store-"));
});

afterAll(() => {
	fs.rmSync(dir, { recursive: true, force: true });
});

/** A datastore opened as the store mixin opens one (mixins/db.mixin.ts). */
async function open(filename: string) {
	const store = new Datastore({ filename, ...lineSafeSerialization });
	await store.loadDatabaseAsync();
	const appender = keepAppendHandleOpen(
		store as unknown as Parameters<typeof keepAppendHandleOpen>[0]
	);
	return { store, appender };
}

/** Any string: every code point, lone surrogates too, and the line breakers often. */
const anyText = fc.oneof(
	anyName,
	fc.string({ unit: fc.constantFrom("\u2028", "\u2029", "\u0085", "\ud800", "x", "\\u2028") })
);

it(
	`any string round-trips through an embedded NeDB file and a reopening, after inserts, updates and a compaction (${STORE_RUNS} cases)`,
	async () => {
		let n = 0;
		await fc.assert(
			fc.asyncProperty(anyText, anyText, fc.boolean(), async (first, second, compact) => {
				const filename = path.join(dir, `case-${n++}.db`);
				const { store, appender } = await open(filename);
				await store.insertAsync({ _id: "doc", text: first, list: [first] });
				await store.insertAsync({ _id: "other", text: second });
				await store.updateAsync({ _id: "doc" }, { $set: { later: second } });
				if (compact) await store.compactDatafileAsync();
				await appender.close();

				const reopened = await open(filename);
				const doc = await reopened.store.findOneAsync({ _id: "doc" });
				expect(doc).toEqual({
					_id: "doc",
					text: first,
					list: [first],
					later: second
				});
				expect(await reopened.store.findOneAsync({ _id: "other" })).toEqual({
					_id: "other",
					text: second
				});
				await reopened.appender.close();
			}),
			{ numRuns: STORE_RUNS }
		);
	},
	PROPERTY_TIMEOUT_MS
);

function onDisk(schema: ServiceSchema, dataDir: string): ServiceSchema {
	return {
		...schema,
		settings: { ...schema.settings, store: { mongoUri: null, dataDir } }
	} as ServiceSchema;
}

function startOn(dataDir: string): Promise<ServiceBroker> {
	return startBroker([
		onDisk(showsSchema(), dataDir),
		onDisk(reservationsSchema(), dataDir),
		apiSchema()
	]);
}

it(
	`every name the checkout accepts reads back the same, in NFC, after a restart of the embedded stores (${SERVICE_RUNS} runs)`,
	async () => {
		let n = 0;
		await fc.assert(
			fc.asyncProperty(fc.array(anyName, { minLength: 1, maxLength: 6 }), async names => {
				const dataDir = path.join(dir, `system-${n++}`);
				const first = await startOn(dataDir);
				let booked;
				try {
					({ booked } = await bookEach(first, names));
				} finally {
					await first.stop();
				}
				const second = await startOn(dataDir);
				try {
					await expectReadBack(second, booked);
				} finally {
					await second.stop();
				}
			}),
			{ numRuns: SERVICE_RUNS }
		);
	},
	PROPERTY_TIMEOUT_MS
);
