/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the time goes, by package or area,
 * by function's own time, and by function's total time (with everything it calls).
 *
 *   node bench/profile.js file.cpuprofile [--top N]
 */
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
/** The benchmark's private copies of dist/ (bench/procs.js) read as dist/. */
const PRIVATE_BUILD = /bench\/results\/\.(?:dist-\d+|src-\d+\/dist)\//;

/** A short place for a script url: package name, app file, or node core. */
function area(url) {
	if (!url) return "(native/vm)";
	url = url.replace(PRIVATE_BUILD, "dist/");
	if (url.startsWith("node:")) return "node core";
	const file = url.replace(/^file:\/\//, "");
	const nm = file.lastIndexOf("node_modules/");
	if (nm >= 0) {
		const parts = file.slice(nm + "node_modules/".length).split("/");
		return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
	}
	if (file.startsWith(ROOT)) return `app ${path.relative(ROOT, file)}`;
	return file;
}

function where(frame) {
	const file = frame.url.replace(/^file:\/\//, "").replace(PRIVATE_BUILD, "dist/");
	const nm = file.lastIndexOf("node_modules/");
	let short = file;
	if (nm >= 0) short = file.slice(nm + "node_modules/".length);
	else if (file.startsWith(ROOT)) short = path.relative(ROOT, file);
	return short ? `${short}:${frame.lineNumber + 1}` : "";
}

/**
 * `fromMs` / `toMs`: only the samples in that window after the profile started (the load, not the
 * process's start-up and shutdown).
 */
function summarise(profile, top = 20, { fromMs = 0, toMs = Infinity } = {}) {
	const byId = new Map(profile.nodes.map(n => [n.id, n]));
	const parent = new Map();
	for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

	const key = n => `${n.callFrame.functionName || "(anonymous)"} ${where(n.callFrame)}`;
	const self = new Map();
	const total = new Map();
	const areas = new Map();
	let all = 0;
	const add = (map, k, v) => map.set(k, (map.get(k) ?? 0) + v);

	let clock = 0;
	for (let i = 0; i < profile.samples.length; i++) {
		const dt = (profile.timeDeltas[i] ?? 0) / 1000; // µs → ms
		clock += dt;
		if (clock < fromMs || clock > toMs) continue;
		const node = byId.get(profile.samples[i]);
		if (!node) continue;
		all += dt;
		add(self, key(node), dt);
		const name = node.callFrame.functionName;
		add(areas, name.startsWith("(") ? name : area(node.callFrame.url), dt);
		// Total time: every distinct function on the sample's stack counts once.
		const seen = new Set();
		for (let id = node.id; id !== undefined; id = parent.get(id)) {
			const k = key(byId.get(id));
			if (!seen.has(k)) {
				seen.add(k);
				add(total, k, dt);
			}
		}
	}
	const pct = v => `${((100 * v) / all).toFixed(1)}%`.padStart(6);
	const list = (map, n, skip = () => false) =>
		[...map.entries()]
			.filter(([k]) => !skip(k))
			.sort((a, b) => b[1] - a[1])
			.slice(0, n)
			.map(([k, v]) => `${pct(v)}  ${k}`)
			.join("\n");
	const boring = k => /^\((root|program|idle)\)/.test(k);
	return [
		`sampled ${(all / 1000).toFixed(1)} s`,
		"",
		"by area (own time):",
		list(areas, 15),
		"",
		`top ${top} functions by own time:`,
		list(self, top),
		"",
		`top ${top} functions by total time (with callees):`,
		list(total, top, boring)
	].join("\n");
}

module.exports = { summarise };

if (require.main === module) {
	const file = process.argv[2];
	const at = process.argv.indexOf("--top");
	const top = at > 0 ? Number(process.argv[at + 1]) : 25;
	if (!file) {
		process.stderr.write("usage: node bench/profile.js file.cpuprofile [--top N]\n");
		process.exit(2);
	}
	process.stdout.write(summarise(JSON.parse(fs.readFileSync(file, "utf8")), top) + "\n");
}
