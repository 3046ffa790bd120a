/**
 * The name policy's property on a MongoDB-wire store: every name the checkout accepts is stored
 * and read back byte for byte, in NFC, through a restart of the services, on a real FerretDB over
 * TCP (one started here unless TEST_MONGO_URI names one). Before, a lone surrogate was booked and
 * came back as U+FFFD, and a decomposed name was stored as sent. A modest count to keep the suite
 * fast: 30 runs of up to 5 names each.
 */
import crypto from "node:crypto";
import fc from "fast-check";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { startFerretDB } from "../../scripts/servers";
import { anyName, bookEach, expectReadBack } from "../support/unicode-names";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "../unit/helpers";

/** Restarts in every run: generous, since a loaded machine (CI beside other work) is slow. */
const PROPERTY_TIMEOUT_MS = 240000;

const RUNS = 30;

let ferret: { uri: string; stop(): Promise<void> } | null = null;
let uri: string;

beforeAll(async () => {
	if (process.env.TEST_MONGO_URI) uri = process.env.TEST_MONGO_URI;
	else {
		ferret = await startFerretDB();
		uri = ferret.uri;
	}
});

afterAll(async () => {
	await ferret?.stop();
});

function onStore(schema: ServiceSchema, databasePrefix: string): ServiceSchema {
	return {
		...schema,
		settings: { ...schema.settings, store: { mongoUri: uri, dataDir: null, databasePrefix } }
	} as ServiceSchema;
}

function startOn(prefix: string): Promise<ServiceBroker> {
	return startBroker([
		onStore(showsSchema(), prefix),
		onStore(reservationsSchema(), prefix),
		apiSchema()
	]);
}

it(
	`every name the checkout accepts reads back the same, in NFC, after a restart on FerretDB (${RUNS} runs)`,
	async () => {
		await fc.assert(
			fc.asyncProperty(fc.array(anyName, { minLength: 1, maxLength: 5 }), async names => {
				const prefix = `unicode_${crypto.randomBytes(4).toString("hex")}_`;
				const first = await startOn(prefix);
				let booked;
				try {
					({ booked } = await bookEach(first, names));
				} finally {
					await first.stop();
				}
				const second = await startOn(prefix);
				try {
					await expectReadBack(second, booked);
				} finally {
					await second.stop();
				}
			}),
			{ numRuns: RUNS }
		);
	},
	PROPERTY_TIMEOUT_MS
);
