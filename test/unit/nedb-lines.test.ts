/**
 * The repair of an embedded data file before NeDB reads it (lib/store/nedb-lines.ts), on the damage an
 * earlier release or a crash can leave: records torn at any of NeDB's extra line breaks are made
 * whole, text no record can be made of is set aside with where it was, and nothing else changes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Datastore from "@seald-io/nedb";
import { lineSafeSerialization, repairDataFile } from "../../lib/store/nedb-lines";

let dir: string;

beforeEach(() => {
	dir = fs.mkdtempSync(path.join(os.tmpdir(), "nedb-lines-"));
});

afterEach(() => {
	fs.rmSync(dir, { recursive: true, force: true });
});

async function documentsIn(filename: string): Promise<unknown[]> {
	const store = new Datastore({ filename, ...lineSafeSerialization });
	await store.loadDatabaseAsync();
	return store.findAsync({}).sort({ _id: 1 });
}

const line = (doc: object) => JSON.stringify(doc) + "\n";

it("rejoins a record torn at several breaks, and a record glued behind unreadable text", async () => {
	const file = path.join(dir, "a.db");
	fs.writeFileSync(
		file,
		line({ _id: "1", name: "a\u2028b\u0085c\u2029d" }) +
			'{"_id":"cut\u2028' +
			JSON.stringify({ _id: "2", name: "x\u2029y" }) +
			"\n" +
			line({ _id: "3", name: "plain" })
	);
	expect(repairDataFile(file)).toEqual({ rejoined: 2, quarantined: 1 });
	expect(await documentsIn(file)).toEqual([
		{ _id: "1", name: "a\u2028b\u0085c\u2029d" },
		{ _id: "2", name: "x\u2029y" },
		{ _id: "3", name: "plain" }
	]);
	const setAside = fs.readFileSync(`${file}.quarantine`, "utf8").trim().split("\n");
	expect(setAside.map(l => JSON.parse(l))).toEqual([
		{ file: "a.db", line: 2, at: expect.any(String), text: '{"_id":"cut' }
	]);
});

it("leaves a healthy file as it is, byte for byte", () => {
	const file = path.join(dir, "b.db");
	const text = line({ _id: "1", name: "a\\u2028b" }) + line({ _id: "2", name: "é" });
	fs.writeFileSync(file, text);
	const before = fs.statSync(file).mtimeMs;
	expect(repairDataFile(file)).toEqual({ rejoined: 0, quarantined: 0 });
	expect(fs.readFileSync(file, "utf8")).toBe(text);
	expect(fs.statSync(file).mtimeMs).toBe(before);
	expect(fs.existsSync(`${file}.quarantine`)).toBe(false);
});

it("repairs NeDB's `file~` when only it is left (a crash during a compaction)", async () => {
	const file = path.join(dir, "c.db");
	fs.writeFileSync(`${file}~`, line({ _id: "1", name: "a\u2028b" }));
	expect(repairDataFile(file)).toEqual({ rejoined: 1, quarantined: 0 });
	expect(await documentsIn(file)).toEqual([{ _id: "1", name: "a\u2028b" }]);
});
