/**
 * An embedded store written by the previous release opens whole. test/fixtures/nedb-torn-v1 is
 * the DATA_DIR that release (commit 6010bbf) left after three bookings, two of them with a name
 * holding U+2028 and U+2029, which its NeDB files hold raw, so NeDB's reader tears those records
 * in two; and a last reservation line cut short, as a crash in the middle of an append leaves it.
 * That store refused to start (over 10% of its lines unreadable). Now the torn records are
 * rejoined, the cut line is set aside in a quarantine file, and the node reports it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { replCommands } from "../../lib/operations/repl-commands";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "./helpers";
import { baseUrlOf, request } from "./http-client";

const FIXTURE = path.join(__dirname, "..", "fixtures", "nedb-torn-v1");
const ROCK = "5b805a00297ae6047030f2e0";
const ANN = "d6a5a48db419542b443bbc080c7f1f1b";
const BO = "d47ede39ad5e8fea9523973113d82163";
const CY = "a8725ff68fadca701d23e9cdb5090665";
const CUT_SHORT =
	'{"_id":"5f3c0ffee5f3c0ffee5f3c0ffee5f3c0","showID":"5b805a00297ae6047030f2e0","name":"Di';

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
		apiSchema({ http: true })
	]);
}

/** The REPL's `quarantine` command, with the console captured. */
async function replQuarantine(broker: ServiceBroker): Promise<string> {
	const cmd = replCommands.find(c => c.command === "quarantine")!;
	const parsed = { args: [] as string[], params: undefined as unknown };
	cmd.parse.call(null, parsed);
	const lines: string[] = [];
	const log = jest.spyOn(console, "log").mockImplementation((...parts: unknown[]) => {
		lines.push(parts.join(" "));
	});
	try {
		const table = (rows: unknown[][]) => rows.map(row => row.join(" | ")).join("\n");
		await cmd.action(broker, parsed.params as { operands: string[] }, { table });
	} finally {
		log.mockRestore();
	}
	return lines.join("\n");
}

describe("a store the previous release wrote with U+2028 and U+2029 in names", () => {
	let dataDir: string;
	let broker: ServiceBroker | null = null;

	beforeEach(() => {
		dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "torn-store-"));
		fs.cpSync(FIXTURE, dataDir, { recursive: true });
	});

	afterEach(async () => {
		await broker?.stop();
		broker = null;
		fs.rmSync(dataDir, { recursive: true, force: true });
	});

	it("opens healthy with the torn records whole, readable and cancelable", async () => {
		broker = await startOn(dataDir);
		const base = baseUrlOf(broker);
		expect(await request(`${base}/health`)).toMatchObject({
			status: 200,
			body: { status: "ok", quarantined: 1 }
		});
		expect(await request(`${base}/reservations/${ANN}`)).toMatchObject({
			status: 200,
			body: { name: "Ann\u2028Lee", guests: 2, status: "confirmed" }
		});
		expect(await request(`${base}/reservations/${BO}`)).toMatchObject({
			status: 200,
			body: { name: "Bo\u2029Ek", guests: 1, status: "confirmed" }
		});
		expect(await request(`${base}/reservations/${CY}`)).toMatchObject({
			status: 200,
			body: { name: "Cy Plain" }
		});
		expect((await request(`${base}/shows/${ROCK}`)).body.reserved).toBe(5);

		const canceled = await request(`${base}/reservations/${ANN}`, { method: "DELETE" });
		expect(canceled).toMatchObject({
			status: 200,
			body: { canceled: true, name: "Ann\u2028Lee" }
		});
		expect((await request(`${base}/shows/${ROCK}`)).body.reserved).toBe(3);

		// What is on disk now reads back whole, through another restart.
		await broker.stop();
		broker = await startOn(dataDir);
		const again = baseUrlOf(broker);
		expect(await request(`${again}/reservations/${ANN}`)).toMatchObject({
			status: 200,
			body: { name: "Ann\u2028Lee", status: "canceled" }
		});
		expect(await request(`${again}/reservations/${BO}`)).toMatchObject({
			body: { name: "Bo\u2029Ek", status: "confirmed" }
		});
	});

	it("rewrites the data file with the separators escaped, nothing raw left", async () => {
		broker = await startOn(dataDir);
		const file = fs.readFileSync(path.join(dataDir, "reservations", "reservations.db"), "utf8");
		expect(file).not.toMatch(/[\u2028\u2029]/);
		expect(file).toContain('"name":"Ann\\u2028Lee"');
		expect(file).toContain('"name":"Bo\\u2029Ek"');
	});

	it("sets the line cut short aside in a quarantine file, and reports it in /health and the REPL until it is dealt with", async () => {
		broker = await startOn(dataDir);
		const quarantine = path.join(dataDir, "reservations", "reservations.db.quarantine");
		const setAside = fs
			.readFileSync(quarantine, "utf8")
			.split("\n")
			.filter(Boolean)
			.map(line => JSON.parse(line));
		expect(setAside).toEqual([
			{ file: "reservations.db", line: 5, at: expect.any(String), text: CUT_SHORT }
		]);
		expect(
			fs.readFileSync(path.join(dataDir, "reservations", "reservations.db"), "utf8")
		).not.toContain("5f3c0ffee");
		expect(await replQuarantine(broker)).toMatch(
			/reservations \| 1 \| reservations\.db\.quarantine/
		);

		// Still reported after a restart, and not set aside twice.
		await broker.stop();
		broker = await startOn(dataDir);
		expect(await request(`${baseUrlOf(broker)}/health`)).toMatchObject({
			status: 200,
			body: { quarantined: 1 }
		});
		expect(fs.readFileSync(quarantine, "utf8").split("\n").filter(Boolean)).toHaveLength(1);

		// The operator dealt with it.
		await broker.stop();
		fs.rmSync(quarantine);
		broker = await startOn(dataDir);
		expect(await request(`${baseUrlOf(broker)}/health`)).toMatchObject({
			status: 200,
			body: { quarantined: 0 }
		});
		expect(await replQuarantine(broker)).toBe("No store lines in quarantine");
	});
});
