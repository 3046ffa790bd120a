/**
 * How much CPU the rest of the machine took while a workload ran: total busy time (/proc/stat)
 * minus the time of this runner and every process it started (/proc/<pid>/stat), and apart from
 * that the time the hypervisor gave to other guests ("steal"). A benchmark on a shared 2-core
 * machine is only as good as these numbers are small, so every workload reports them.
 * Linux only; elsewhere it reports null.
 */
"use strict";

const fs = require("node:fs");
const os = require("node:os");

function readMachine() {
	const fields = fs
		.readFileSync("/proc/stat", "utf8")
		.split("\n")[0]
		.trim()
		.split(/\s+/)
		.slice(1)
		.map(Number);
	// user nice system idle iowait irq softirq steal
	const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
	const steal = fields[7] ?? 0;
	return { total, busy: total - fields[3] - fields[4] - steal, steal };
}

/** A process's parent and its utime + stime in clock ticks, from /proc; null once it is gone. */
function readStat(pid) {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name is in parentheses and may contain spaces: split after it.
		const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) };
	} catch {
		return null;
	}
}

/** utime + stime of processes (this one by default) and all their descendants, in clock ticks. */
function readTree(roots = [process.pid]) {
	const procs = new Map();
	for (const name of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(name)) continue;
		const stat = readStat(name);
		if (stat) procs.set(Number(name), stat);
	}
	const children = new Map();
	for (const [pid, p] of procs) {
		if (!children.has(p.ppid)) children.set(p.ppid, []);
		children.get(p.ppid).push(pid);
	}
	let ticks = 0;
	const pending = [...roots];
	while (pending.length > 0) {
		const pid = pending.pop();
		ticks += procs.get(pid)?.ticks ?? 0;
		pending.push(...(children.get(pid) ?? []));
	}
	return ticks;
}

function snapshot() {
	try {
		return { ...readMachine(), own: readTree() };
	} catch {
		return null;
	}
}

/**
 * Cores' worth of CPU that other processes used since `before`, what the hypervisor took from this
 * machine meanwhile, and what this run used.
 */
function since(before) {
	const after = snapshot();
	if (!before || !after || after.total <= before.total)
		return { otherCores: null, stolenCores: null, ownCores: null };
	const cores = os.availableParallelism();
	const elapsed = (after.total - before.total) / cores;
	const busy = after.busy - before.busy;
	const own = after.own - before.own;
	const round = x => Math.round(Math.max(0, x) * 100) / 100;
	return {
		otherCores: round((busy - own) / elapsed),
		stolenCores: round((after.steal - before.steal) / elapsed),
		ownCores: round(own / elapsed)
	};
}

/** CPU that was not this run's to use: other processes' and the hypervisor's, in cores. */
const notOurs = usage =>
	usage.otherCores === null ? null : usage.otherCores + (usage.stolenCores ?? 0);

module.exports = { snapshot, since, notOurs, readStat, readTree };
