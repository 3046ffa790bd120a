/**
 * The benchmark: the system, embedded and as a cluster, measured side by side with the floor of
 * this machine (bare Node servers, bench/floor.js), plus scale tables. See docs/performance.md.
 *
 *   npm run bench                       build, then everything (about 6 minutes on 2 cores)
 *   node bench/run.js --quick           a short smoke run of everything
 *   node bench/run.js --only embedded   only some sections: floor, embedded, cluster, scale,
 *                                       onsale (bench/onsale.js: a 100,000-seat show sold out)
 *                                       (comma-separated); `surge` (not in the default run:
 *                                       bench/surge.js, checkouts from up to 4,000 connections);
 *                                       `profile` (not in the default run)
 *                                       CPU-profiles the embedded process under each workload;
 *                                       `latency` (not in the default run) adds 0/1/5 ms per hop
 *                                       between cluster nodes (bench/latency.js)
 *   --duration S --warmup S --connections N   override the measured run's settings
 *   --ref <git ref>                     measure that commit (built privately) instead of dist/
 *   --wait-idle                         on a shared machine: start each measured run only once
 *                                       other processes leave the CPU alone, and measure again
 *                                       (twice at most) if they, or the hypervisor (steal), took more
 *                                       than 0.3 cores
 *
 * Prints markdown tables and writes bench/results/latest.json (a run of only some sections:
 * latest-<sections>.json), and a dated copy. Exits 1 if a
 * section failed, or if any workload had a non-2xx answer or a transport error.
 * Run it on an otherwise idle machine: it measures throughput, which whatever else runs steals.
 */
"use strict";
/* global fetch */

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const procs = require("./procs");
const load = require("./load");
const { seedShowsStore, seedReservations } = require("./seed");
const { summarise: summariseProfile } = require("./profile");
const { onsale } = require("./onsale");

const RESULTS_DIR = path.join(__dirname, "results");
const SECTIONS = ["floor", "embedded", "cluster", "scale", "onsale"];
const ALL_SECTIONS = [...SECTIONS, "profile", "latency", "surge"];

const TARGETS = [
	{ system: "embedded", workload: "reads", floor: "reads", min: 0.5 },
	{ system: "embedded", workload: "reads", floor: "webReads", min: 1.0 },
	{ system: "embedded", workload: "pairs", floor: "pairs", min: 0.15 },
	{ system: "cluster", workload: "reads", floor: "reads", min: 0.4 },
	{ system: "cluster", workload: "pairs", floor: "pairs", min: 0.04 }
];

function parseArgs(argv) {
	const opts = { quick: false, only: null };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const value = () => {
			const v = argv[++i];
			if (v === undefined) throw new Error(`${a} needs a value`);
			return v;
		};
		if (a === "--quick") opts.quick = true;
		else if (a === "--only") opts.only = value().split(",").filter(Boolean);
		else if (a === "--profile") opts.only = [...(opts.only ?? SECTIONS), "profile"];
		else if (a === "--duration") opts.duration = Number(value());
		else if (a === "--warmup") opts.warmup = Number(value());
		else if (a === "--ref") opts.ref = value();
		else if (a === "--wait-idle") opts.waitIdle = true;
		else if (a === "--connections") opts.connections = Number(value());
		else if (a === "--help" || a === "-h") {
			process.stdout.write(fs.readFileSync(__filename, "utf8").split("*/")[0] + "*/\n");
			process.exit(0);
		} else throw new Error(`unknown option ${a}`);
	}
	for (const name of ["duration", "warmup", "connections"])
		if (opts[name] !== undefined && !(Number.isFinite(opts[name]) && opts[name] >= 0))
			throw new Error(`--${name} needs a number`);
	if (opts.duration === 0 || opts.connections === 0)
		throw new Error("--duration and --connections must be above 0");
	for (const s of opts.only ?? [])
		if (!ALL_SECTIONS.includes(s))
			throw new Error(`--only ${s}: expected one of ${ALL_SECTIONS.join(", ")}`);

	const base = opts.quick
		? {
				warmup: 1,
				duration: 3,
				scaleWarmup: 1,
				scaleDuration: 3,
				instances: [1, 2],
				showCounts: [10, 1000],
				reservationCounts: [0, 1000],
				profileDuration: 3
			}
		: {
				// Checkouts on a fresh process take about 5 s to reach their steady rate (JIT).
				warmup: 5,
				duration: 8,
				scaleWarmup: 4,
				scaleDuration: 6,
				instances: [1, 2, 4],
				showCounts: [10, 1000, 100000],
				reservationCounts: [0, 1000, 10000],
				profileDuration: 8
			};
	return {
		...base,
		connections: opts.connections ?? 32,
		...(opts.duration ? { duration: opts.duration, scaleDuration: opts.duration } : {}),
		...(opts.warmup !== undefined ? { warmup: opts.warmup, scaleWarmup: opts.warmup } : {}),
		quick: opts.quick,
		ref: opts.ref ?? null,
		waitIdle: Boolean(opts.waitIdle),
		sections: opts.only ?? SECTIONS,
		/** Shows of the multi-show checkout workload in the instance scale table. */
		spreadShows: 8
	};
}

/** Which code was measured: the commit, and whether the working tree differed from it. */
function codeVersion(ref) {
	const git = args => {
		try {
			return execFileSync("git", args, { cwd: procs.ROOT, encoding: "utf8" }).trim();
		} catch {
			return null;
		}
	};
	const changed = git([
		"status",
		"--porcelain",
		"--",
		"services",
		"lib",
		"mixins",
		"moleculer.config.ts"
	]);
	if (ref)
		return {
			ref,
			commit: git(["rev-parse", "--short", ref]),
			exact: true,
			uncommittedChanges: []
		};
	let distBuiltAt = null;
	try {
		distBuiltAt = fs
			.statSync(path.join(procs.ROOT, "dist", "services", "shows.service.js"))
			.mtime.toISOString();
	} catch {
		// no build: the run stops at the dist/ check
	}
	return {
		commit: git(["rev-parse", "--short", "HEAD"]),
		/** When the measured dist/ was built: it is the working tree of that moment. */
		distBuiltAt,
		uncommittedChanges: changed ? changed.split("\n").map(l => l.trim()) : []
	};
}

function machine() {
	let cpu = "unknown";
	try {
		cpu = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
	} catch {
		cpu = os.cpus()[0]?.model ?? cpu;
	}
	return {
		nproc: os.availableParallelism(),
		cpu,
		memoryGiB: Math.round(os.totalmem() / 2 ** 30),
		node: process.version,
		os: `${os.type()} ${os.release()}`,
		loadavgAtStart: os.loadavg().map(x => Math.round(x * 100) / 100)
	};
}

const log = msg =>
	process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

/** Fails a workload's result if a process of the system died while it ran. */
function checkAlive(target, result) {
	const dead = target.processes.filter(p => !p.alive()).map(p => p.name);
	if (dead.length > 0) result.crashed = dead;
	return result;
}

function problems(r) {
	if (!r) return 0;
	return (r.non2xx ?? 0) + (r.errors ?? 0) + (r.crashed ? 1 : 0);
}

/** The answer of one GET, to see what the gateway does with `?limit=` (pagination or not). */
async function probeList(baseUrl, query = "") {
	const res = await fetch(`${baseUrl}/${query}`);
	const body = await res.json();
	const list = Array.isArray(body) ? body : (Object.values(body).find(Array.isArray) ?? []);
	return { status: res.status, shows: list.length, link: res.headers.get("link") };
}

// ---------------------------------------------------------------------------------------------

async function runFloor(cfg, out) {
	const { connections, warmup, duration } = cfg;
	log("floor: bare http, GET /");
	const bare = await procs.startFloor("bare");
	try {
		out.floor.reads = checkAlive(
			bare,
			await load.reads(bare.baseUrl, { connections, warmup, duration })
		);
	} finally {
		await bare.stop();
	}
	log("floor: moleculer-web's least (local broker, one plain action), GET /");
	const web = await procs.startFloor("moleculer-web");
	try {
		out.floor.webReads = checkAlive(
			web,
			await load.reads(web.baseUrl, { connections, warmup, duration })
		);
	} finally {
		await web.stop();
	}
	log("floor: append-to-file http, checkout+cancel pairs");
	const append = await procs.startFloor("append");
	try {
		out.floor.pairs = checkAlive(
			append,
			await load.pairs(append.baseUrl, { connections, warmup, duration })
		);
	} finally {
		await append.stop();
	}
}

async function runSystem(kind, cfg, out) {
	const { connections, warmup, duration } = cfg;
	log(`${kind}: starting`);
	const target = kind === "embedded" ? await procs.startEmbedded() : await procs.startCluster();
	try {
		log(`${kind}: GET /`);
		out[kind].reads = checkAlive(
			target,
			await load.reads(target.baseUrl, { connections, warmup, duration })
		);
		log(`${kind}: checkout+cancel pairs`);
		out[kind].pairs = checkAlive(
			target,
			await load.pairs(target.baseUrl, { connections, warmup, duration })
		);
		out[kind].pairs.seatsStillReserved = await load.reservedSeats(target.baseUrl);
	} finally {
		await target.stop();
	}
}

async function runScale(cfg, out) {
	const { connections, scaleWarmup: warmup, scaleDuration: duration } = cfg;
	out.scale.instances = [];
	for (const n of cfg.instances) {
		log(`scale: cluster with ${n} shows instance(s)`);
		const row = { showsInstances: n };
		out.scale.instances.push(row);
		try {
			const target = await procs.startCluster({
				showsInstances: n,
				extraShows: cfg.spreadShows
			});
			try {
				row.oneShow = checkAlive(
					target,
					await load.pairs(target.baseUrl, { connections, warmup, duration })
				);
				row.spread = checkAlive(
					target,
					await load.pairs(target.baseUrl, {
						showIDs: target.showIDs,
						connections,
						warmup,
						duration
					})
				);
			} finally {
				await target.stop();
			}
		} catch (err) {
			row.error = String(err.message ?? err).slice(0, 2000);
			log(`scale: ${n} instance(s) failed: ${row.error}`);
		}
	}

	out.scale.storedReservations = [];
	for (const count of cfg.reservationCounts) {
		log(`scale: cluster with ${count} reservations already stored`);
		const row = { reservations: count };
		out.scale.storedReservations.push(row);
		try {
			const target = await procs.startCluster({
				prepareStore: uri => (count > 0 ? seedReservations(uri, count) : undefined)
			});
			try {
				// A slow store answers late: wait for the answers rather than count timeouts.
				row.pairs = checkAlive(
					target,
					await load.pairs(target.baseUrl, { connections, warmup, duration, timeout: 30 })
				);
			} finally {
				await target.stop();
			}
		} catch (err) {
			row.error = String(err.message ?? err).slice(0, 2000);
			log(`scale: ${count} stored reservations failed: ${row.error}`);
		}
	}

	out.scale.showCount = [];
	for (const count of cfg.showCounts) {
		log(`scale: embedded with ${count} shows in the store`);
		const row = { shows: count };
		out.scale.showCount.push(row);
		try {
			const dataDir = procs.tempDir("bench-shows-");
			seedShowsStore(dataDir, count);
			const started = Date.now();
			const target = await procs.startEmbedded({ dataDir, healthTimeoutMs: 180000 });
			row.startupS = load.round((Date.now() - started) / 1000, 2);
			try {
				const first = await probeList(target.baseUrl);
				const limited = await probeList(target.baseUrl, "?limit=1000");
				row.firstAnswer = first;
				row.limitAnswer = limited;
				// Paginated: the default answer is a page, or a Link header says there is more.
				row.paginated = Boolean(first.link) || first.shows < count;
				// A large answer takes a while to build; allow it, and count what still times out.
				const timeout = count >= 10000 ? 60 : 10;
				row.list = checkAlive(
					target,
					await load.reads(target.baseUrl, { connections, warmup, duration, timeout })
				);
				row.list.showsPerAnswer = first.shows;
				row.list1000 = checkAlive(
					target,
					await load.reads(target.baseUrl, {
						path: "/?limit=1000",
						connections,
						warmup,
						duration,
						timeout
					})
				);
				row.list1000.showsPerAnswer = limited.shows;
			} finally {
				await target.stop();
			}
		} catch (err) {
			row.error = String(err.message ?? err).slice(0, 2000);
			log(`scale: ${count} shows failed: ${row.error}`);
		}
	}
}

/**
 * The embedded process under --cpu-prof, a fresh process per workload, with a summary of the
 * samples taken under load. Workloads: GET /, checkout+cancel pairs, and GET / with the largest
 * shows store of the scale table.
 */
async function runProfile(cfg, out) {
	const { connections } = cfg;
	const duration = cfg.profileDuration;
	const bigStore = cfg.showCounts[cfg.showCounts.length - 1];
	const dir = path.join(RESULTS_DIR, `profile-${stamp()}`);
	fs.mkdirSync(dir, { recursive: true });
	out.profile = { dir: path.relative(process.cwd(), dir) };
	const workloads = [
		{ name: "reads", run: base => load.reads(base, { connections, warmup: 0, duration }) },
		{ name: "pairs", run: base => load.pairs(base, { connections, warmup: 0, duration }) },
		{
			name: `reads-${bigStore}-shows`,
			shows: bigStore,
			run: base => load.reads(base, { connections, warmup: 0, duration })
		}
	];
	// The idle wait must not fall inside the profiled window: wait before starting instead.
	const waitIdle = cfg.waitIdle;
	load.setIdleGuard({ enabled: false });
	for (const workload of workloads) {
		if (waitIdle) await load.waitIdle(true);
		log(`profile: embedded under ${workload.name}`);
		const profDir = path.join(dir, workload.name);
		let dataDir;
		if (workload.shows) {
			dataDir = procs.tempDir("bench-profile-");
			seedShowsStore(dataDir, workload.shows);
		}
		const target = await procs.startEmbedded({
			dataDir,
			nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`],
			healthTimeoutMs: 180000
		});
		const spawnedAt = target.processes[0].spawnedAt;
		let result;
		let window;
		try {
			const from = Date.now() - spawnedAt;
			result = await workload.run(target.baseUrl);
			// Only the samples taken under load: not start-up, not shutdown.
			window = { fromMs: from, toMs: Date.now() - spawnedAt };
		} finally {
			await target.stop();
		}
		const file = fs.existsSync(profDir)
			? fs.readdirSync(profDir).find(f => f.endsWith(".cpuprofile"))
			: undefined;
		const summary = file
			? summariseProfile(
					JSON.parse(fs.readFileSync(path.join(profDir, file), "utf8")),
					25,
					window
				)
			: "no profile written";
		fs.writeFileSync(path.join(dir, `${workload.name}.txt`), summary + "\n");
		out.profile[workload.name] = { throughput: result.throughput, summary };
		process.stdout.write(
			`\n### CPU profile, embedded, ${workload.name} (${result.throughput}/s under profiling)\n\n`
		);
		process.stdout.write("```\n" + summary + "\n```\n");
	}
}

// ---------------------------------------------------------------------------------------------

function table(headers, rows) {
	const cells = rows.map(r =>
		headers.map((_, i) => (r[i] === null || r[i] === undefined ? "–" : String(r[i])))
	);
	const widths = headers.map((h, i) => Math.max(h.length, ...cells.map(r => r[i].length)));
	const line = r => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
	return [
		line(headers),
		`|${widths.map(w => "-".repeat(w + 2)).join("|")}|`,
		...cells.map(line)
	].join("\n");
}

const fmt = (x, digits = 0) =>
	x === null || x === undefined
		? null
		: Number(x).toLocaleString("en-US", {
				maximumFractionDigits: digits,
				minimumFractionDigits: digits
			});
const ms = x => (x === null || x === undefined ? null : fmt(x, x < 10 ? 2 : 1));
/** "p50 / p99", or nothing when there were no answers to measure. */
const pair = (a, b) => (a === null || a === undefined ? null : `${ms(a)} / ${ms(b)}`);

function errorsCell(r) {
	if (!r) return null;
	const parts = [];
	if (r.non2xx) {
		const codes = Object.entries(r.statusCodes)
			.filter(([c]) => !c.startsWith("2"))
			.map(([c, n]) => `${n}×${c}`);
		parts.push(codes.join(" "));
	}
	if (r.errors) parts.push(`${r.errors} err${r.timeouts ? ` (${r.timeouts} timeouts)` : ""}`);
	if (r.crashed) parts.push(`CRASHED ${r.crashed.join(",")}`);
	if (r.ok2xx === 0) parts.push(`no answer at all (${r.unanswered} in flight at the end)`);
	return parts.length > 0 ? parts.join("; ") : "0";
}

/** What the hypervisor took from this machine during a run, when it took enough to matter. */
const stolenNote = stolen => (stolen >= 0.05 ? `, ${stolen.toFixed(2)} stolen` : "");

/**
 * Cores this run used and cores other processes took meanwhile (ideally 0), and what the
 * hypervisor took (steal).
 */
function cpuCell(r) {
	if (!r || r.ownCores === null || r.ownCores === undefined) return null;
	const client = r.clientCores !== undefined ? ` (${r.client} ${r.clientCores.toFixed(2)})` : "";
	return `${r.ownCores.toFixed(2)} / ${r.otherCores.toFixed(2)}${client}${stolenNote(r.stolenCores ?? 0)}`;
}

/** The most CPU other processes, and apart from them the hypervisor, took during any of these. */
function othersCell(...results) {
	const most = key => Math.max(...results.map(r => r?.[key]).filter(x => typeof x === "number"));
	const others = most("otherCores");
	return Number.isFinite(others)
		? `${others.toFixed(2)}${stolenNote(most("stolenCores"))}`
		: null;
}

function mainTable(out) {
	const rows = [];
	const row = (name, r, unit, floor, target) => {
		const isPairs = r?.workload === "pairs";
		const ratio = r && floor ? r.throughput / floor.throughput : null;
		let verdict = null;
		if (target) {
			if (!r) verdict = "not run";
			else if (ratio === null) verdict = "no floor";
			else verdict = ratio >= target.min ? "PASS" : "MISS";
			if (r && ratio !== null && problems(r) > 0) verdict += " (with errors)";
		}
		rows.push([
			name,
			r ? fmt(r.throughput) : null,
			unit,
			r ? ms(isPairs ? r.pairP50Ms : r.p50Ms) : null,
			r ? ms(isPairs ? r.pairP99Ms : r.p99Ms) : null,
			r && isPairs ? pair(r.p50Ms, r.p99Ms) : null,
			errorsCell(r),
			floor && target ? fmt(floor.throughput) : null,
			ratio !== null ? `${ratio.toFixed(3)}×` : null,
			target ? `≥ ${target.min}×` : null,
			verdict,
			cpuCell(r)
		]);
	};
	row("floor: bare http, GET /", out.floor.reads, "req/s");
	row("floor: moleculer-web's least, GET /", out.floor.webReads, "req/s");
	row("floor: append http, checkout+cancel", out.floor.pairs, "pairs/s");
	for (const t of TARGETS) {
		const versus = t.floor === "webReads" ? " (vs moleculer-web's least)" : "";
		const name = `${t.system}: ${t.workload === "reads" ? "GET /" : "checkout+cancel"}${versus}`;
		row(
			name,
			out[t.system]?.[t.workload],
			t.workload === "reads" ? "req/s" : "pairs/s",
			out.floor[t.floor],
			t
		);
	}
	return table(
		[
			"run",
			"throughput",
			"unit",
			"p50 ms",
			"p99 ms",
			"per request p50 / p99 ms",
			"non-2xx / errors",
			"floor",
			"ratio",
			"target",
			"result",
			"CPU ours / others (client)"
		],
		rows
	);
}

function instancesTable(out) {
	const cell = r => (r ? fmt(r.throughput) : null);
	const lat = r => (r ? pair(r.pairP50Ms, r.pairP99Ms) : null);
	return table(
		[
			"shows instances",
			"pairs/s, 1 show",
			"pair p50 / p99 ms",
			"non-2xx / errors",
			`pairs/s, ${out.config.spreadShows} shows`,
			"pair p50 / p99 ms",
			"non-2xx / errors",
			"others' CPU"
		],
		out.scale.instances.map(r =>
			r.error
				? [
						r.showsInstances,
						`FAILED: ${r.error.split("\n")[0].slice(0, 60)}`,
						null,
						null,
						null,
						null,
						null
					]
				: [
						r.showsInstances,
						cell(r.oneShow),
						lat(r.oneShow),
						errorsCell(r.oneShow),
						cell(r.spread),
						lat(r.spread),
						errorsCell(r.spread),
						othersCell(r.oneShow, r.spread)
					]
		)
	);
}

function storedReservationsTable(out) {
	return table(
		[
			"reservations already stored",
			"pairs/s, 1 show",
			"pair p50 / p99 ms",
			"non-2xx / errors",
			"pairs completed in each second",
			"others' CPU"
		],
		out.scale.storedReservations.map(r => {
			if (r.error)
				return [fmt(r.reservations), `FAILED: ${r.error.split("\n")[0].slice(0, 60)}`];
			const p = r.pairs;
			return [
				fmt(r.reservations),
				fmt(p.throughput, p.throughput < 100 ? 1 : 0),
				pair(p.pairP50Ms, p.pairP99Ms),
				errorsCell(p),
				p.pairsEachSecond.join(" "),
				othersCell(p)
			];
		})
	);
}

function showCountTable(out) {
	const kb = r => (r?.bytesPerAnswer ? fmt(r.bytesPerAnswer / 1024, 1) : null);
	return table(
		[
			"shows in store",
			"startup s",
			"GET / req/s",
			"p50 / p99 ms",
			"shows per answer",
			"KiB per answer",
			"non-2xx / errors",
			"GET /?limit=1000 req/s",
			"p50 / p99 ms",
			"shows per answer",
			"non-2xx / errors",
			"others' CPU"
		],
		out.scale.showCount.map(r => {
			if (r.error)
				return [
					fmt(r.shows),
					`FAILED: ${r.error.split("\n")[0].slice(0, 60)}`,
					null,
					null,
					null,
					null,
					null,
					null,
					null,
					null,
					null
				];
			const l = r.list;
			const k = r.list1000;
			return [
				fmt(r.shows),
				r.startupS,
				l ? fmt(l.throughput, l.throughput < 100 ? 1 : 0) : null,
				l ? pair(l.p50Ms, l.p99Ms) : null,
				l ? fmt(l.showsPerAnswer) : null,
				kb(l),
				errorsCell(l),
				k ? fmt(k.throughput, k.throughput < 100 ? 1 : 0) : null,
				k ? pair(k.p50Ms, k.p99Ms) : null,
				k ? fmt(k.showsPerAnswer) : null,
				errorsCell(k),
				othersCell(l, k)
			];
		})
	);
}

function stamp() {
	return new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
}

function report(out) {
	const parts = [];
	// Header lines end with two spaces: separate lines in markdown, as on a terminal.
	const m = out.machine;
	parts.push(
		`Machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}; ` +
			`load average at start ${m.loadavgAtStart.join(" ")}`
	);
	parts.push(
		`Load: autocannon, ${out.config.connections} connections, ${out.config.warmup} s warm-up + ` +
			`${out.config.duration} s measured per workload (scale tables: ${out.config.scaleWarmup} s + ${out.config.scaleDuration} s). ` +
			`Latency: p50/p99 per pair for checkout+cancel (per request in its own column), per request for GET.`
	);
	const c = out.code;
	if (c.exact)
		parts.push(`Code: exactly commit ${c.commit} (--ref ${c.ref}), built for this run`);
	else
		parts.push(
			`Code: commit ${c.commit}` +
				(c.uncommittedChanges.length > 0
					? ` plus uncommitted changes to ${c.uncommittedChanges.length} file(s) under services/ lib/ mixins/`
					: "") +
				`; dist/ built ${c.distBuiltAt}`
		);
	if (out.config.waitIdle) {
		const again = allResults(out).filter(r => r.attempts > 1).length;
		parts.push(
			`--wait-idle: each measured run started on an idle machine; ${again} workload(s) measured again`
		);
	}
	if (out.floor.reads || out.embedded.reads || out.cluster.reads) parts.push("", mainTable(out));
	if (out.latency) parts.push("", out.latency.report);
	const perSecond = ["embedded", "cluster"]
		.filter(sys => out[sys].pairs?.pairsEachSecond?.length > 1)
		.map(
			sys =>
				`${sys} checkout+cancel pairs completed in each second: ${out[sys].pairs.pairsEachSecond.join(" ")}`
		);
	if (perSecond.length > 0) parts.push("", perSecond.join("  \n"));
	if (out.scale.instances)
		parts.push(
			"",
			"Cluster checkout+cancel pairs by number of shows processes:",
			"",
			instancesTable(out)
		);
	if (out.scale.storedReservations)
		parts.push(
			"",
			"Cluster checkout+cancel pairs by reservations already in the store (FerretDB):",
			"",
			storedReservationsTable(out)
		);
	if (out.scale.showCount) {
		const notPaginated = out.scale.showCount.some(r => r.paginated === false && r.shows > 100);
		parts.push("", "Embedded GET / by number of shows in the store:", "", showCountTable(out));
		if (notPaginated)
			parts.push(
				"",
				"GET / is not paginated in this build: it answers every show, and `?limit=` is ignored."
			);
		else if (out.scale.showCount.some(r => r.paginated))
			parts.push(
				"",
				"GET / is paginated in this build: it answers the first page (see 'shows per answer')."
			);
	}
	if (out.onsale)
		parts.push(
			"",
			"Big on-sale: a 100,000-seat show added by an operator, sold out by checkouts of 10, 32 at once",
			"",
			out.onsale.report.trimEnd(),
			"",
			`on-sale targets: ${out.onsale.pass ? "PASS" : "MISS"}`
		);
	if (out.surge)
		parts.push(
			"",
			"On-sale surge: 2-seat checkouts from N connections, a 100,000-seat show per row",
			"",
			out.surge.report.trimEnd()
		);
	if (out.failures.length > 0)
		parts.push(
			"",
			"FAILED sections:",
			...out.failures.map(f => `- ${f.section}: ${f.error.split("\n")[0]}`)
		);
	const busiest = Math.max(0, ...allResults(out).map(r => r.otherCores ?? 0));
	if (busiest > 0.2)
		parts.push(
			"",
			`WARNING: other processes took up to ${busiest.toFixed(2)} cores during a workload ` +
				`("others' CPU"); those numbers are lower than this machine can do.`
		);
	const robbed = Math.max(0, ...allResults(out).map(r => r.stolenCores ?? 0));
	if (robbed > 0.2)
		parts.push(
			"",
			`WARNING: the hypervisor took up to ${robbed.toFixed(2)} cores from this machine during ` +
				'a workload (steal, "stolen" in the CPU columns); those numbers are lower than the ' +
				"same machine does when its host is quiet."
		);
	const withErrors = workloadsWithErrors(out);
	if (withErrors.length > 0)
		parts.push("", `Workloads with non-2xx answers or errors: ${withErrors.join(", ")}`);
	const firstBlank = parts.indexOf("");
	const head = parts.slice(0, firstBlank < 0 ? parts.length : firstBlank).join("  \n");
	return [head, ...(firstBlank < 0 ? [] : parts.slice(firstBlank))].join("\n") + "\n";
}

function allResults(out) {
	const list = [];
	for (const sys of ["floor", "embedded", "cluster"])
		for (const w of ["reads", "pairs"]) if (out[sys][w]) list.push(out[sys][w]);
	for (const r of out.scale.instances ?? []) list.push(r.oneShow, r.spread);
	for (const r of out.scale.storedReservations ?? []) list.push(r.pairs);
	for (const r of out.scale.showCount ?? []) list.push(r.list, r.list1000);
	return list.filter(Boolean);
}

function workloadsWithErrors(out) {
	const names = [];
	for (const sys of ["floor", "embedded", "cluster"])
		for (const w of ["reads", "pairs"])
			if (problems(out[sys][w]) > 0) names.push(`${sys} ${w}`);
	for (const r of out.scale.instances ?? [])
		for (const w of ["oneShow", "spread"])
			if (problems(r[w]) > 0) names.push(`scale ${r.showsInstances} instances ${w}`);
	for (const r of out.scale.storedReservations ?? [])
		if (problems(r.pairs) > 0) names.push(`scale ${r.reservations} stored reservations`);
	for (const r of out.scale.showCount ?? [])
		for (const w of ["list", "list1000"])
			if (problems(r[w]) > 0) names.push(`scale ${r.shows} shows ${w}`);
	return names;
}

function ratios(out) {
	return TARGETS.map(t => {
		const r = out[t.system]?.[t.workload];
		const f = out.floor[t.floor];
		const ratio = r && f ? r.throughput / f.throughput : null;
		return {
			system: t.system,
			workload: t.workload,
			throughput: r?.throughput ?? null,
			floor: f?.throughput ?? null,
			ratio: ratio === null ? null : Math.round(ratio * 10000) / 10000,
			target: t.min,
			pass: ratio === null ? null : ratio >= t.min,
			errors: r ? problems(r) : null
		};
	});
}

async function main() {
	let cfg;
	try {
		cfg = parseArgs(process.argv.slice(2));
	} catch (err) {
		log(`${err.message} (see node bench/run.js --help)`);
		return 2;
	}
	if (cfg.ref) {
		log(`building ${cfg.ref} into bench/results/.src-${process.pid}`);
		procs.buildRef(cfg.ref, path.join(RESULTS_DIR, `.src-${process.pid}`));
	} else procs.snapshotDist(path.join(RESULTS_DIR, `.dist-${process.pid}`));
	const out = {
		startedAt: new Date().toISOString(),
		finishedAt: null,
		machine: machine(),
		code: codeVersion(cfg.ref),
		config: cfg,
		floor: {},
		embedded: {},
		cluster: {},
		scale: {},
		ratios: [],
		failures: []
	};
	if (out.machine.loadavgAtStart[0] > 0.7)
		log(
			`WARNING: load average ${out.machine.loadavgAtStart[0]}: something else is using the CPU; throughput will be low`
		);
	log(`sections: ${cfg.sections.join(", ")}${cfg.quick ? " (quick)" : ""}`);

	load.setIdleGuard({ enabled: cfg.waitIdle });
	const started = Date.now();
	const sections = {
		floor: () => runFloor(cfg, out),
		embedded: () => runSystem("embedded", cfg, out),
		cluster: () => runSystem("cluster", cfg, out),
		scale: () => runScale(cfg, out),
		profile: () => runProfile(cfg, out),
		latency: () => require("./latency").run(cfg, out),
		onsale: async () => {
			out.onsale = await onsale({
				seats: cfg.quick ? 10000 : 100000,
				perOrder: 10,
				connections: 32,
				kinds: ["embedded", "cluster"]
			});
			if (!out.onsale.pass) log("onsale: a target was missed (see its table)");
		},
		surge: async () => {
			const { surge, KINDS } = require("./surge");
			out.surge = await surge({
				kinds: KINDS,
				durationS: cfg.quick ? 3 : 8,
				connections: cfg.quick ? [32, 256] : [32, 256, 1024, 4000],
				repeat: cfg.quick ? 1 : 3
			});
			if (out.surge.verdicts.some(v => !v.pass))
				log("surge: a target was missed (see its table)");
		}
	};
	for (const name of ALL_SECTIONS) {
		if (!cfg.sections.includes(name)) continue;
		try {
			await sections[name]();
		} catch (err) {
			out.failures.push({ section: name, error: String(err.stack ?? err) });
			log(`${name} FAILED: ${err.message}`);
		} finally {
			await procs.stopAll();
		}
	}
	await procs.stopAll({ final: true });
	out.finishedAt = new Date().toISOString();
	out.elapsedS = Math.round((Date.now() - started) / 1000);
	out.machine.loadavgAtEnd = os.loadavg().map(x => Math.round(x * 100) / 100);
	out.ratios = ratios(out);
	out.report = report(out);

	fs.mkdirSync(RESULTS_DIR, { recursive: true });
	const json = JSON.stringify(out, null, 2) + "\n";
	// A partial run (--only) keeps its own latest file, so that it does not replace a full run's.
	const full = SECTIONS.every(section => cfg.sections.includes(section));
	const latest = full ? "latest.json" : `latest-${cfg.sections.join("-")}.json`;
	fs.writeFileSync(path.join(RESULTS_DIR, latest), json);
	fs.writeFileSync(
		path.join(RESULTS_DIR, `run-${stamp()}${cfg.quick ? "-quick" : ""}.json`),
		json
	);
	process.stdout.write("\n" + out.report);
	process.stdout.write(
		`\n(${out.elapsedS} s; results in ${path.relative(process.cwd(), path.join(RESULTS_DIR, latest))})\n`
	);
	return out.failures.length === 0 && workloadsWithErrors(out).length === 0 ? 0 : 1;
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"])
	process.on(signal, () => {
		if (stopping) return;
		stopping = true;
		log(`${signal}: stopping everything`);
		procs.stopAll({ final: true }).finally(() => process.exit(130));
	});

main()
	.then(code => {
		process.exitCode = code;
	})
	.catch(async err => {
		log(String(err.stack ?? err));
		await procs.stopAll({ final: true });
		process.exitCode = 1;
	});
