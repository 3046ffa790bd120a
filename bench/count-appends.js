/**
 * Preloaded into a system process (`node --require bench/count-appends.js`) by
 * bench/writes-per-pair.js: counts the file appends the embedded stores make, per file. NeDB's
 * appends (each insert, update or removal, or each batch of them) go through
 * `fs.promises.appendFile`, or through a kept-open handle's `appendFile` (lib/store/nedb-appender.ts):
 * an append is one durable store write. SIGUSR2 writes the counts so far to APPEND_COUNTS_FILE.
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const counts = {};
const count = file => {
	const name = typeof file === "string" ? path.relative(process.env.DATA_DIR ?? "", file) : "?";
	counts[name] = (counts[name] ?? 0) + 1;
};

const appendFile = fs.promises.appendFile;
fs.promises.appendFile = function countedAppendFile(file, ...rest) {
	count(file);
	return appendFile.call(this, file, ...rest);
};

// A handle remembers the path it was opened with; its appends count for that file.
const paths = new WeakMap();
const open = fs.promises.open;
let patched = false;
fs.promises.open = async function countedOpen(file, ...rest) {
	const handle = await open.call(this, file, ...rest);
	paths.set(handle, String(file));
	if (!patched) {
		patched = true;
		const proto = Object.getPrototypeOf(handle);
		const handleAppend = proto.appendFile;
		proto.appendFile = function countedHandleAppend(...args) {
			count(paths.get(this));
			return handleAppend.apply(this, args);
		};
	}
	return handle;
};

process.on("SIGUSR2", () => {
	fs.writeFileSync(process.env.APPEND_COUNTS_FILE, JSON.stringify(counts));
});
