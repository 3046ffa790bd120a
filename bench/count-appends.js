/**
 * Preloaded into a system process (`node --require bench/count-appends.js`) by
 * bench/writes-per-pair.js: counts the file appends NeDB makes, per file. NeDB appends each
 * insert, update or removal (or each batch of them) with one `fs.promises.appendFile`, so an
 * append is one durable store write. SIGUSR2 writes the counts so far to APPEND_COUNTS_FILE.
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const counts = {};
const appendFile = fs.promises.appendFile;
fs.promises.appendFile = function countedAppendFile(file, ...rest) {
	const name = typeof file === "string" ? path.relative(process.env.DATA_DIR ?? "", file) : "?";
	counts[name] = (counts[name] ?? 0) + 1;
	return appendFile.call(this, file, ...rest);
};
process.on("SIGUSR2", () => {
	fs.writeFileSync(process.env.APPEND_COUNTS_FILE, JSON.stringify(counts));
});
