/**
 * Durable writes one checkout+cancel pair costs on the embedded stores: runs the system as `npm
 * start` does (from dist/), makes `pairs` pairs, and counts per NeDB file under DATA_DIR the
 * appends (store writes: NeDB appends each insert, update or removal, or a batch of them, with one
 * call; bench/count-appends.js counts them) and the lines it grew by (documents written).
 *
 *   node bench/writes-per-pair.js [pairs, default 100] [--concurrency N, default 1] [--ref <git ref>]
 * With a concurrency above 1, pairs run that many at once, as an on-sale does: group commit then
 * makes one append carry several checkouts.
 */
"use strict";
/* global fetch */

const fs = require("node:fs");
const path = require("node:path");
const procs = require("./procs");

const ROCK = "5b805a00297ae6047030f2e0";

async function appendCounts(system, file) {
	process.kill(system.processes[0].child.pid, "SIGUSR2");
	for (let i = 0; i < 50 && !fs.existsSync(file); i++) await procs.sleep(20);
	await procs.sleep(50);
	const counts = JSON.parse(fs.readFileSync(file, "utf8"));
	fs.rmSync(file);
	return counts;
}

function lineCounts(dir) {
	const counts = {};
	const walk = folder => {
		for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
			const full = path.join(folder, entry.name);
			if (entry.isDirectory()) walk(full);
			else if (entry.name.endsWith(".db"))
				counts[path.relative(dir, full)] = fs
					.readFileSync(full, "utf8")
					.split("\n")
					.filter(Boolean).length;
		}
	};
	walk(dir);
	return counts;
}

async function main() {
	const args = process.argv.slice(2);
	procs.useCodeFromArgs(args);
	const at = args.indexOf("--concurrency");
	const concurrency = at >= 0 ? Number(args.splice(at, 2)[1]) : 1;
	const pairs = Number(args[0] ?? 100);
	const countsFile = path.join(procs.tempDir("bench-appends-"), "counts.json");
	const system = await procs.startEmbedded({
		nodeArgs: ["--require", path.join(__dirname, "count-appends.js")],
		env: { APPEND_COUNTS_FILE: countsFile }
	});
	const pair = async () => {
		const res = await fetch(`${system.baseUrl}/reserve`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "Bench", count: 1, showID: ROCK })
		});
		const { _id } = await res.json();
		if (res.status !== 201) throw new Error(`checkout answered ${res.status}`);
		const cancel = await fetch(`${system.baseUrl}/reservations/${_id}`, { method: "DELETE" });
		await cancel.arrayBuffer();
		if (cancel.status !== 200) throw new Error(`cancel answered ${cancel.status}`);
	};
	await pair(); // start-up writes (seeding, first compaction) are not the pair's
	// Writes that come after the answers (settling, housekeeping gathered for
	// STORE_CLEANUP_DELAY_MS) are counted with the pairs they belong to.
	const settled = () => procs.sleep(1500);
	await settled();
	const before = lineCounts(system.dataDir);
	const appendsBefore = await appendCounts(system, countsFile);
	let started = 0;
	const worker = async () => {
		while (started < pairs) {
			started++;
			await pair();
		}
	};
	await Promise.all(Array.from({ length: concurrency }, worker));
	await settled();
	const after = lineCounts(system.dataDir);
	const appendsAfter = await appendCounts(system, countsFile);
	const total = { file: "total", "appends per pair": 0, "documents per pair": 0 };
	const rows = Object.keys(after).map(file => {
		const row = {
			file,
			"appends per pair": ((appendsAfter[file] ?? 0) - (appendsBefore[file] ?? 0)) / pairs,
			"documents per pair": (after[file] - (before[file] ?? 0)) / pairs
		};
		total["appends per pair"] += row["appends per pair"];
		total["documents per pair"] += row["documents per pair"];
		return row;
	});
	rows.push(total);
	console.log(`${pairs} pairs, ${concurrency} at once`);
	console.table(rows);
}

procs.runMain(main);
