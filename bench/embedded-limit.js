/**
 * Where the embedded store ends: writes N confirmed reservations straight into the NeDB files (as
 * the reservations service stores them: a booking and its outcome fact each), then starts the
 * whole system on them and measures the time to a healthy node and its memory.
 *
 *   node bench/embedded-limit.js [N ...]      default: 100000 250000 500000
 */
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const procs = require("./procs");

const ROCK = "5b805a00297ae6047030f2e0";

function writeReservations(dataDir, count) {
	const dir = path.join(dataDir, "reservations");
	fs.mkdirSync(dir, { recursive: true });
	const bookings = fs.openSync(path.join(dir, "reservations.db"), "w");
	const facts = fs.openSync(path.join(dir, "reservation_states.db"), "w");
	const at = Date.now();
	for (let i = 0; i < count; i++) {
		const id = crypto.randomBytes(16).toString("hex");
		fs.writeSync(
			bookings,
			JSON.stringify({
				_id: id,
				showID: ROCK,
				name: `Guest ${i}`,
				guests: 2,
				fingerprint: id,
				createdAt: at
			}) + "\n"
		);
		fs.writeSync(
			facts,
			JSON.stringify({ _id: `${id}:outcome`, reservation: id, status: "confirmed", at }) +
				"\n"
		);
	}
	fs.closeSync(bookings);
	fs.closeSync(facts);
}

function rssMiB(pid) {
	const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
	return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024);
}

procs.runMain(async () => {
	const sizes = process.argv.slice(2).map(Number);
	const rows = [
		"| reservations | store on disk | start to healthy | memory (RSS) | warned at start |",
		"|---|---|---|---|---|"
	];
	for (const n of sizes.length ? sizes : [100000, 250000, 500000]) {
		const dataDir = procs.tempDir("bench-limit-");
		writeReservations(dataDir, n);
		const bytes =
			fs.statSync(path.join(dataDir, "reservations", "reservations.db")).size +
			fs.statSync(path.join(dataDir, "reservations", "reservation_states.db")).size;
		const started = Date.now();
		const system = await procs.startEmbedded({ dataDir, healthTimeoutMs: 300000 });
		const seconds = (Date.now() - started) / 1000;
		const rss = rssMiB(system.processes[0].child.pid);
		const warned = system.processes[0].output().includes("Move to MongoDB") ? "yes" : "no";
		await system.stop();
		rows.push(
			`| ${n.toLocaleString("en")} | ${(bytes / 1048576).toFixed(0)} MiB | ${seconds.toFixed(1)} s | ${rss} MiB | ${warned} |`
		);
		process.stderr.write(rows[rows.length - 1] + "\n");
	}
	process.stdout.write(rows.join("\n") + "\n");
});
