/**
 * NeDB's file format made safe for any string. NeDB stores one JSON document per line, but its
 * reader also breaks lines at U+0085, U+2028 and U+2029, which JSON.stringify leaves raw inside
 * strings: a document holding one was torn in two on disk, then refused the next start (over 10%
 * of lines unreadable) or dropped without a word. So what NeDB writes escapes them (JSON.parse
 * reads the escapes back), and a file written before is repaired before NeDB reads it: torn
 * documents are rejoined and escaped, and a line that still cannot be read goes to
 * `<file>.quarantine` beside it, never silently away.
 */
import fs from "node:fs";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";

/** What NeDB's line reader (its lib/byline.js) breaks at that JSON.stringify leaves raw. */
const RAW_LINE_BREAKS = /[\u0085\u2028\u2029]/g;
const HAS_RAW_LINE_BREAK = /[\u0085\u2028\u2029]/;

/** NeDB's other line breaks, found once the file is split at `\n` (JSON escapes all of them). */
const NEDB_BREAKS = /(\r\n|[\v\f\r\u0085\u2028\u2029])/;

/**
 * Pieces of one damaged line tried as rejoined documents, at most: past it the line is set aside
 * whole (every start would otherwise spend quadratic time on it).
 */
const MAX_PIECES = 257;

/** Bytes read, and lines written, at a time while checking and repairing a file. */
const CHUNK_BYTES = 1 << 20;
const LINES_PER_WRITE = 4096;

/** A serialised document with its raw line breaks written as JSON escapes. */
export function escapeLineBreaks(line: string): string {
	return line.replace(
		RAW_LINE_BREAKS,
		ch => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`
	);
}

/**
 * Options for every NeDB datastore kept in a file. NeDB runs all it writes (appends and
 * compactions) through `afterSerialization`; reading needs no undoing, as JSON.parse turns the
 * escapes back into the characters.
 */
export const lineSafeSerialization = {
	afterSerialization: escapeLineBreaks,
	beforeDeserialization: (line: string) => line
};

/** A line NeDB can read: JSON for an object (a document or an index record). */
function readable(text: string): boolean {
	try {
		const doc: unknown = JSON.parse(text);
		return typeof doc === "object" && doc !== null;
	} catch {
		return false;
	}
}

/**
 * What one `\n`-line of a data file holds: its documents, rejoined where NeDB's reader would tear
 * them, and the runs of text no document can be made of.
 */
function salvage(line: string): { docs: string[]; unreadable: string[] } {
	if (readable(line)) return { docs: [line], unreadable: [] };
	// [piece, break, piece, break, ..., piece]
	const parts = line.split(NEDB_BREAKS);
	if (parts.length > MAX_PIECES * 2) return { docs: [], unreadable: [line] };
	const docs: string[] = [];
	const unreadable: string[] = [];
	let pending: string | null = null;
	for (let i = 0; i < parts.length;) {
		let text = parts[i];
		let end = -1;
		// The shortest run of pieces from here that reads as a document.
		if (text.trimStart().startsWith("{"))
			for (let j = i; j < parts.length; j += 2) {
				if (j > i) text += parts[j - 1] + parts[j];
				if (readable(text)) {
					end = j;
					break;
				}
			}
		if (end >= 0) {
			if (pending?.trim()) unreadable.push(pending);
			pending = null;
			docs.push(text);
			i = end + 2;
		} else {
			pending = pending === null ? parts[i] : pending + parts[i - 1] + parts[i];
			i += 2;
		}
	}
	if (pending?.trim()) unreadable.push(pending);
	return { docs, unreadable };
}

/** The file's lines, split at `\n`, read a chunk at a time (a UTF-8 sequence cut by a chunk is kept whole). */
function* linesOf(file: string): Generator<string> {
	const fd = fs.openSync(file, "r");
	try {
		const chunk = Buffer.alloc(CHUNK_BYTES);
		const decoder = new StringDecoder("utf8");
		let rest = "";
		for (;;) {
			const n = fs.readSync(fd, chunk, 0, CHUNK_BYTES, null);
			if (n === 0) break;
			const lines = (rest + decoder.write(chunk.subarray(0, n))).split("\n");
			rest = lines.pop()!;
			yield* lines;
		}
		rest += decoder.end();
		if (rest !== "") yield rest;
	} finally {
		fs.closeSync(fd);
	}
}

/** A line as NeDB should find it: the same line unless it was torn, damaged or not escaped. */
function lineNeedsRepair(line: string): boolean {
	if (line === "") return false;
	return HAS_RAW_LINE_BREAK.test(line) || !readable(line);
}

interface RepairReport {
	/** Documents rewritten with their line breaks escaped (torn ones rejoined). */
	rejoined: number;
	/** Texts newly set aside in the quarantine file. */
	quarantined: number;
}

function quarantineFileOf(file: string): string {
	return `${file}.quarantine`;
}

/**
 * Makes `file` (or NeDB's `file~`, which NeDB takes when the file itself is missing) readable
 * whole by NeDB before it loads it. Unreadable text is appended to the quarantine file, made
 * durable, before the repaired file replaces the old one, so a crash in between loses nothing.
 */
export function repairDataFile(file: string, now = new Date()): RepairReport {
	const target = fs.existsSync(file) ? file : fs.existsSync(`${file}~`) ? `${file}~` : null;
	const report: RepairReport = { rejoined: 0, quarantined: 0 };
	if (!target) return report;
	let damaged = false;
	for (const line of linesOf(target)) if ((damaged = lineNeedsRepair(line))) break;
	if (!damaged) return report;

	const repairing = `${target}.repairing`;
	const out = fs.openSync(repairing, "w");
	const setAside: string[] = [];
	const pending: string[] = [];
	const flush = () => {
		fs.writeSync(out, pending.map(line => line + "\n").join(""));
		pending.length = 0;
	};
	try {
		let lineNumber = 0;
		for (const line of linesOf(target)) {
			lineNumber += 1;
			if (line === "") continue;
			const { docs, unreadable } = salvage(line);
			for (const doc of docs) {
				const safe = escapeLineBreaks(doc);
				if (safe !== doc) report.rejoined += 1;
				pending.push(safe);
				if (pending.length >= LINES_PER_WRITE) flush();
			}
			for (const text of unreadable)
				setAside.push(
					escapeLineBreaks(
						JSON.stringify({
							file: path.basename(file),
							line: lineNumber,
							at: now.toISOString(),
							text
						})
					) + "\n"
				);
		}
		flush();
		fs.fsyncSync(out);
	} finally {
		fs.closeSync(out);
	}
	if (setAside.length > 0) {
		const quarantine = fs.openSync(quarantineFileOf(file), "a");
		try {
			fs.writeSync(quarantine, setAside.join(""));
			fs.fsyncSync(quarantine);
		} finally {
			fs.closeSync(quarantine);
		}
	}
	report.quarantined = setAside.length;
	fs.renameSync(repairing, target);
	return report;
}

/** Texts set aside for `file` so far: the lines of its quarantine file. */
function quarantinedCount(file: string): number {
	const quarantine = quarantineFileOf(file);
	if (!fs.existsSync(quarantine)) return 0;
	return fs
		.readFileSync(quarantine, "utf8")
		.split("\n")
		.filter(line => line !== "").length;
}

interface StoreCheck {
	/** Texts waiting in quarantine files of this store, from this start and earlier ones. */
	quarantined: number;
	/** Those files' names, in the store's folder. */
	quarantineFiles: string[];
}

/**
 * Repairs a store's data files before NeDB opens them, and tells the operator what it did. The
 * log names files and line numbers, never their text (a reservation id is never logged).
 */
export function checkDataFiles(
	files: string[],
	logger: { info(message: string): void; warn(message: string): void }
): StoreCheck {
	const check: StoreCheck = { quarantined: 0, quarantineFiles: [] };
	for (const file of files) {
		const { rejoined, quarantined } = repairDataFile(file);
		if (rejoined > 0)
			logger.info(
				`${file}: ${rejoined} record(s) with a line or paragraph separator rewritten escaped, whole`
			);
		if (quarantined > 0)
			logger.warn(
				`${file}: ${quarantined} unreadable line(s) set aside in ${quarantineFileOf(file)}`
			);
		const waiting = quarantinedCount(file);
		if (waiting > 0) {
			check.quarantined += waiting;
			check.quarantineFiles.push(path.basename(quarantineFileOf(file)));
		}
	}
	if (check.quarantined > 0)
		logger.warn(
			`${check.quarantined} unreadable line(s) wait in quarantine (${check.quarantineFiles.join(", ")}): ` +
				`look at them, restore what belongs in the store, then remove the files`
		);
	return check;
}
