/**
 * Pins what lib/store/nedb-appender.ts and lib/store/nedb-lines.ts rely on inside @seald-io/nedb, which it does
 * not document: fails when an upgrade changes it, so that they are looked at again.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { Readable } from "node:stream";
import Datastore from "@seald-io/nedb";
import { escapeLineBreaks, lineSafeSerialization } from "../../lib/store/nedb-lines";

const nedbRequire = createRequire(require.resolve("@seald-io/nedb"));

/** Every character NeDB's line reader breaks a data file at. */
async function nedbLineBreaks(): Promise<string[]> {
	const byline = nedbRequire("./lib/byline.js") as (stream: Readable) => AsyncIterable<string>;
	const chars: string[] = [];
	for (let code = 0; code <= 0xffff; code++)
		if (code < 0xd800 || code > 0xdfff) chars.push(String.fromCharCode(code));
	const text = chars.map(c => `<${c}>`).join("");
	const lines: string[] = [];
	for await (const line of byline(Readable.from([Buffer.from(text, "utf8")])))
		lines.push(String(line));
	// Each character read back whole stays `<c>`; one the reader broke at leaves `<>`.
	const read = lines.join("");
	const breaks: string[] = [];
	let at = 0;
	for (const c of chars) {
		if (read.startsWith(`<${c}>`, at)) at += 3;
		else if (read.startsWith("<>", at)) {
			breaks.push(c);
			at += 2;
		} else
			throw new Error(`unexpected text at ${at}: ${JSON.stringify(read.slice(at, at + 8))}`);
	}
	return breaks;
}

it("the installed @seald-io/nedb is the version the store's adapters were written against", () => {
	const { version } = nedbRequire("./package.json") as { version: string };
	expect(version).toBe("3.1.0");
});

it("NeDB's reader breaks lines at exactly the characters nedb-lines knows, and each that JSON leaves raw is escaped", async () => {
	const breaks = await nedbLineBreaks();
	expect(breaks).toEqual(["\n", "\v", "\f", "\r", "\u0085", "\u2028", "\u2029"]);
	const rawInJson = breaks.filter(c => JSON.stringify(c).includes(c));
	expect(rawInJson).toEqual(["\u0085", "\u2028", "\u2029"]);
	for (const c of rawInJson) {
		const line = escapeLineBreaks(JSON.stringify({ name: `a${c}b` }));
		expect(line).not.toContain(c);
		expect(JSON.parse(line)).toEqual({ name: `a${c}b` });
	}
});

it("the persistence methods and serializer that nedb-appender replaces or calls are there", () => {
	const Persistence = nedbRequire("./lib/persistence.js") as {
		prototype: Record<string, unknown>;
	};
	const model = nedbRequire("./lib/model.js") as { serialize?: unknown };
	expect(typeof Persistence.prototype.persistNewStateAsync).toBe("function");
	expect(typeof Persistence.prototype.persistCachedDatabaseAsync).toBe("function");
	expect(typeof model.serialize).toBe("function");
});

it("NeDB's own appends and compactions go through afterSerialization", async () => {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nedb-pin-"));
	try {
		const filename = path.join(dir, "pin.db");
		const store = new Datastore({ filename, ...lineSafeSerialization });
		await store.loadDatabaseAsync();
		await store.insertAsync({ _id: "a", name: "x\u2028y" });
		expect(fs.readFileSync(filename, "utf8")).toContain("x\\u2028y");
		await store.compactDatafileAsync();
		expect(fs.readFileSync(filename, "utf8")).toContain("x\\u2028y");
		expect(fs.readFileSync(filename, "utf8")).not.toContain("\u2028");
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
});
