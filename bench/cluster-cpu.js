/**
 * Where the cluster's CPU goes under checkout+cancel pairs: starts the cluster as the benchmark
 * does (1 shows process), runs the pairs workload, and prints the cores each process used
 * (/proc, Linux only).
 *
 *   node bench/cluster-cpu.js [seconds, default 8] [--ref <git ref>]
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const procs = require("./procs");
const load = require("./load");
const { readStat } = require("./cpu");

/** Parent of every process, to tell ours (descendants of this runner) from others'. */
function parents() {
	const ppid = new Map();
	for (const name of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(name)) continue;
		const stat = readStat(name);
		if (stat) ppid.set(Number(name), stat.ppid);
	}
	return ppid;
}

/** utime + stime (clock ticks) and a label of every process of this run. */
function processTicks() {
	const out = new Map();
	const ppid = parents();
	const ours = pid => {
		for (let p = pid; p > 1; p = ppid.get(p) ?? 0) if (p === process.pid) return true;
		return false;
	};
	for (const name of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(name) || !ours(Number(name))) continue;
		try {
			const stat = readStat(name);
			if (!stat) continue;
			const env = fs.readFileSync(`/proc/${name}/environ`, "utf8").split("\0");
			const cmd = fs.readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
			const nodeId = env.find(e => e.startsWith("NODE_ID="))?.slice(8);
			let label = null;
			if (Number(name) === process.pid) label = "bench runner (autocannon)";
			else if (nodeId) label = nodeId;
			else if (/\.cache\/bin\/(nats-server|ferretdb)$/.test(cmd[0]))
				label = path.basename(cmd[0]);
			if (label) out.set(name, { label, ticks: stat.ticks });
		} catch {
			// gone, or not ours to read
		}
	}
	return out;
}

async function main() {
	const args = process.argv.slice(2);
	procs.useCodeFromArgs(args);
	const seconds = Number(args[0] ?? 8);
	const cluster = await procs.startCluster();
	// Warm up first, so that the measured part is the steady state.
	await load.pairs(cluster.baseUrl, { connections: 32, duration: 5, warmup: 0 });
	const before = processTicks();
	const started = Date.now();
	const result = await load.pairs(cluster.baseUrl, {
		connections: 32,
		duration: seconds,
		warmup: 0
	});
	const after = processTicks();
	const elapsed = (Date.now() - started) / 1000;
	const rows = [...after]
		.filter(([pid]) => before.has(pid))
		.map(([pid, p]) => ({
			process: p.label,
			cores: Math.round(((p.ticks - before.get(pid).ticks) / 100 / elapsed) * 100) / 100
		}))
		.sort((a, b) => b.cores - a.cores);
	console.log(`${result.throughput} pairs/s, others' CPU ${result.otherCores} cores`);
	console.table(rows);
}

procs.runMain(main);
