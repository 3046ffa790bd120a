/**
 * Durable writes one checkout+cancel pair costs on the embedded stores: runs the system as `npm
 * start` does (from dist/), makes `pairs` pairs one after another, and counts the lines each NeDB
 * file under DATA_DIR grew by (NeDB appends one line per insert, update or removal).
 *
 *   node bench/writes-per-pair.js [pairs, default 100] [--ref <git ref>]
 */
"use strict";
/* global fetch */

const fs = require("node:fs");
const path = require("node:path");
const procs = require("./procs");

const ROCK = "5b805a00297ae6047030f2e0";

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
	const pairs = Number(args[0] ?? 100);
	const system = await procs.startEmbedded();
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
	const before = lineCounts(system.dataDir);
	for (let i = 0; i < pairs; i++) await pair();
	const after = lineCounts(system.dataDir);
	let total = 0;
	const rows = Object.keys(after).map(file => {
		const perPair = (after[file] - (before[file] ?? 0)) / pairs;
		total += perPair;
		return { file, "appends per pair": perPair };
	});
	rows.push({ file: "total", "appends per pair": total });
	console.table(rows);
}

procs.runMain(main);
