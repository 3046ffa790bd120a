/**
 * The processes a benchmark run starts: the system (embedded or as a cluster on real nats-server
 * and FerretDB from scripts/servers.js) and the floor servers. Everything started here is
 * remembered, and `stopAll` stops it: the runner calls it at the end, on failure and on Ctrl-C, and
 * a last synchronous SIGKILL runs when the runner exits however it exits.
 * Only 127.0.0.1 is ever used.
 */
"use strict";
/* global fetch */

const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { freePort, startNats, startFerretDB } = require("../scripts/servers");
const { isAlive } = require("../scripts/is-alive");

const ROOT = path.resolve(__dirname, "..");
const RUNNER = path.join(ROOT, "node_modules", "moleculer", "bin", "moleculer-runner.js");
let CONFIG = path.join(ROOT, "dist", "moleculer.config.js");
let SERVICEDIR = path.join(ROOT, "dist", "services");
const STOP_GRACE_MS = 10000;

/** Children still running, and other things to undo (servers, temp folders), newest last. */
const children = new Set();
const cleanups = [];
/** Undone only at the very end of a run (the private copy of dist/). */
const finalCleanups = [];

/** Variables of the caller that must not leak into a process the benchmark configures itself. */
const SYSTEM_VARS = [
	"SERVICES",
	"TRANSPORTER",
	"MONGO_URI",
	"MONGO_DB_PREFIX",
	"NAMESPACE",
	"NODE_ID",
	"DATA_DIR",
	"PORT",
	"RATE_LIMIT",
	"METRICS_PORT",
	"LOG_LEVEL",
	"TRACING",
	"SERVICEDIR",
	"NODE_OPTIONS"
];

function cleanEnv() {
	const env = { ...process.env };
	for (const name of SYSTEM_VARS) delete env[name];
	return env;
}

function tempDir(prefix) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
	cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
	return dir;
}

/**
 * Runs the system from a private copy of dist/, so that a rebuild meanwhile (`npm test` rebuilds
 * it) can neither break a run nor change the code between its sections. The copy lives inside
 * the repository (bench/results/, ignored by git) so that it resolves node_modules as dist/ does.
 */
function snapshotDist(into) {
	const dist = path.join(ROOT, "dist");
	const needed = ["moleculer.config.js", "services/api.service.js", "services/shows.service.js"];
	for (const file of needed)
		if (!fs.existsSync(path.join(dist, file)))
			throw new Error(
				`dist/${file} is missing: run \`npm run build\` (or \`npm run bench\`)`
			);
	fs.mkdirSync(path.dirname(into), { recursive: true });
	removeStale(path.dirname(into), /^\.dist-\d+$/, 6);
	fs.rmSync(into, { recursive: true, force: true });
	fs.cpSync(dist, into, { recursive: true });
	finalCleanups.push(async () => fs.rmSync(into, { recursive: true, force: true }));
	CONFIG = path.join(into, "moleculer.config.js");
	SERVICEDIR = path.join(into, "services");
}

/**
 * Builds the system as committed at a git ref (`--ref`), for measuring a known commit whatever
 * state the working tree is in: its sources (git archive) compiled with the project's tsc into a
 * private folder inside bench/results/ (so node_modules resolves), which is then what runs.
 */
function buildRef(ref, into) {
	const { execFileSync } = require("node:child_process");
	fs.mkdirSync(path.dirname(into), { recursive: true });
	removeStale(path.dirname(into), /^\.src-\d+$/, 5);
	fs.rmSync(into, { recursive: true, force: true });
	fs.mkdirSync(into, { recursive: true });
	finalCleanups.push(async () => fs.rmSync(into, { recursive: true, force: true }));
	const { SOURCES: sources } = require("../scripts/build-if-stale");
	const tar = path.join(into, "src.tar");
	execFileSync("git", ["archive", "--format=tar", "-o", tar, ref, "--", ...sources], {
		cwd: ROOT
	});
	execFileSync("tar", ["-xf", tar, "-C", into]);
	execFileSync(
		process.execPath,
		[require.resolve("typescript/bin/tsc"), "-p", path.join(into, "tsconfig.build.json")],
		{ cwd: into, stdio: ["ignore", "inherit", "inherit"] }
	);
	CONFIG = path.join(into, "dist", "moleculer.config.js");
	SERVICEDIR = path.join(into, "dist", "services");
}

/** Removes folders `<name>-<pid>` left by runs that were killed outright. */
function removeStale(folder, pattern, pidAt) {
	for (const name of fs.readdirSync(folder).filter(n => pattern.test(n))) {
		const pid = Number(name.slice(pidAt));
		if (pid !== process.pid && !isAlive(pid))
			fs.rmSync(path.join(folder, name), { recursive: true, force: true });
	}
}

/** Starts one process; its output is kept (the tail) for error messages. */
function spawnProcess(name, command, args, env) {
	const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
	let output = "";
	const keep = chunk => {
		output += chunk.toString();
		if (output.length > 20000) output = output.slice(-20000);
	};
	child.stdout.on("data", keep);
	child.stderr.on("data", keep);
	const exited = new Promise(resolve => {
		child.once("exit", (code, signal) => {
			children.delete(handle);
			resolve(code ?? signal);
		});
		child.once("error", err => {
			keep(String(err));
			children.delete(handle);
			resolve("spawn-error");
		});
	});
	const handle = {
		name,
		child,
		spawnedAt: Date.now(),
		exited,
		output: () => output,
		alive: () => child.exitCode === null && child.signalCode === null,
		async stop() {
			if (!handle.alive()) return exited;
			child.kill("SIGTERM");
			const timer = setTimeout(() => handle.alive() && child.kill("SIGKILL"), STOP_GRACE_MS);
			const result = await exited;
			clearTimeout(timer);
			return result;
		}
	};
	children.add(handle);
	return handle;
}

/** Waits until GET /health answers 200; fails early if a watched process exits. */
async function waitForHealthy(baseUrl, watched = [], timeoutMs = 60000) {
	const deadline = Date.now() + timeoutMs;
	let last = "";
	while (Date.now() < deadline) {
		const dead = watched.find(h => !h.alive());
		if (dead) throw new Error(`${dead.name} exited before it was healthy:\n${dead.output()}`);
		try {
			const res = await fetch(`${baseUrl}/health`);
			last = `${res.status} ${await res.text()}`;
			if (res.status === 200) return;
		} catch (err) {
			last = String(err.cause ?? err);
		}
		await sleep(100);
	}
	const tails = watched.map(h => `--- ${h.name}\n${h.output().slice(-3000)}`).join("\n");
	throw new Error(`${baseUrl} not healthy within ${timeoutMs} ms: ${last}\n${tails}`);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

/** A moleculer-runner process of the built system. */
function systemProcess(name, env, nodeArgs = []) {
	return spawnProcess(name, process.execPath, [...nodeArgs, RUNNER, "--config", CONFIG], {
		...cleanEnv(),
		SERVICEDIR,
		RATE_LIMIT: "0",
		METRICS_PORT: "0",
		LOG_LEVEL: "warn",
		...env
	});
}

/**
 * The whole system in one process on embedded NeDB stores, as `npm start` runs it.
 * `dataDir` may be prepared beforehand (a seeded shows store); `nodeArgs` e.g. --cpu-prof.
 */
async function startEmbedded({ dataDir, nodeArgs = [], env = {}, healthTimeoutMs } = {}) {
	const port = await freePort();
	const dir = dataDir ?? tempDir("bench-embedded-");
	const node = systemProcess(
		"embedded",
		{ SERVICES: "shows,reservations,api", DATA_DIR: dir, PORT: String(port), ...env },
		nodeArgs
	);
	const baseUrl = `http://127.0.0.1:${port}`;
	try {
		await waitForHealthy(baseUrl, [node], healthTimeoutMs);
	} catch (err) {
		await node.stop();
		throw err;
	}
	return { kind: "embedded", baseUrl, dataDir: dir, processes: [node], stop: () => node.stop() };
}

/** Counts the nodes that run each service, as a cluster member sees them. */
function serviceNodes(broker) {
	const counts = {};
	for (const svc of broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }))
		counts[svc.name] = (counts[svc.name] ?? 0) + 1;
	return counts;
}

/**
 * The system as a cluster: its own nats-server and FerretDB, `showsInstances` separate shows
 * processes, one reservations process and one api process, in a namespace of their own.
 * The api starts only once every shows and reservations node has joined, so that its balancer
 * knows them all; `extraShows` more shows are created through `shows.create` (as an operator's
 * REPL would) before it starts. `prepareStore(mongoUri)` runs before any service starts.
 * `nodeEnv(nodeId, env)` may change a node's environment (bench/latency.js routes its links
 * through proxies); `env` is added to every node's.
 */
async function startCluster({
	showsInstances = 1,
	extraShows = 0,
	extraShowSeats = 100000,
	prepareStore,
	nodeEnv = async (_nodeId, env) => env,
	env: extraEnv = {}
} = {}) {
	const id = crypto.randomBytes(4).toString("hex");
	const nats = await startNats();
	cleanups.push(() => nats.stop());
	const mongo = await startFerretDB();
	cleanups.push(() => mongo.stop());
	if (prepareStore) await prepareStore(mongo.uri);
	const namespace = `bench-${id}`;
	const env = { ...extraEnv, TRANSPORTER: nats.url, MONGO_URI: mongo.uri, NAMESPACE: namespace };
	const processes = [];
	const stop = async () => {
		// The gateway first, then the services, then the servers they use.
		for (const group of [["api"], ["shows", "reservations"]])
			await Promise.all(
				processes.filter(p => group.includes(p.name.split("-")[0])).map(p => p.stop())
			);
		await nats.stop();
		await mongo.stop();
	};

	// A service-less member of the cluster, only to see who has joined (and to create shows).
	const { ServiceBroker } = require("moleculer");
	const watcher = new ServiceBroker({
		namespace,
		nodeID: `bench-watcher-${id}`,
		transporter: nats.url,
		logger: false
	});
	try {
		await watcher.start();
		for (let i = 1; i <= showsInstances; i++)
			processes.push(
				systemProcess(
					`shows-${i}`,
					await nodeEnv(`shows-${i}`, {
						...env,
						SERVICES: "shows",
						NODE_ID: `shows-${i}`
					})
				)
			);
		processes.push(
			systemProcess(
				"reservations-1",
				await nodeEnv("reservations-1", {
					...env,
					SERVICES: "reservations",
					NODE_ID: "reservations-1"
				})
			)
		);
		const deadline = Date.now() + 60000;
		for (;;) {
			const dead = processes.find(p => !p.alive());
			if (dead) throw new Error(`${dead.name} exited while starting:\n${dead.output()}`);
			const counts = serviceNodes(watcher);
			if ((counts.shows ?? 0) >= showsInstances && (counts.reservations ?? 0) >= 1) break;
			if (Date.now() > deadline)
				throw new Error(`cluster did not assemble: ${JSON.stringify(counts)}`);
			await sleep(100);
		}
		const showIDs = [];
		for (let i = 0; i < extraShows; i++) {
			const show = await watcher.call("shows.create", {
				name: `Bench show ${i + 1}`,
				houseSize: extraShowSeats
			});
			showIDs.push(show._id);
		}
		const port = await freePort();
		const api = systemProcess(
			"api-1",
			await nodeEnv("api-1", {
				...env,
				SERVICES: "api",
				NODE_ID: "api-1",
				PORT: String(port)
			})
		);
		processes.push(api);
		const baseUrl = `http://127.0.0.1:${port}`;
		await waitForHealthy(baseUrl, processes);
		// Health needs one node of each; give the gateway's discovery a moment to hear the rest.
		await sleep(1000);
		await watcher.stop();
		return {
			kind: "cluster",
			baseUrl,
			namespace,
			transporter: nats.url,
			showIDs,
			processes,
			stop,
			mongoUri: mongo.uri
		};
	} catch (err) {
		await watcher.stop().catch(() => undefined);
		await stop();
		throw err;
	}
}

/** A floor server (bench/floor.js) in its own process. */
async function startFloor(mode) {
	const port = await freePort();
	const args = [path.join(__dirname, "floor.js"), mode, "--port", String(port)];
	if (mode === "append") args.push("--file", path.join(tempDir("bench-floor-"), "append.db"));
	const node = spawnProcess(`floor-${mode}`, process.execPath, args, cleanEnv());
	const baseUrl = `http://127.0.0.1:${port}`;
	await waitForHealthy(baseUrl, [node], 10000);
	return { kind: "floor", baseUrl, processes: [node], stop: () => node.stop() };
}

/**
 * Stops every process still running and removes the temp folders; `final` also removes the copy
 * of dist/. Safe to call twice.
 */
async function stopAll({ final = false } = {}) {
	await Promise.all([...children].map(h => h.stop()));
	const lists = final ? [cleanups, finalCleanups] : [cleanups];
	for (const list of lists)
		while (list.length > 0) {
			const undo = list.pop();
			await Promise.resolve()
				.then(undo)
				.catch(() => undefined);
		}
}

// Whatever happens, no child outlives the runner.
process.on("exit", () => {
	for (const h of children) if (h.alive()) h.child.kill("SIGKILL");
});

/**
 * For the helper scripts: runs the system from the commit named by `--ref <git ref>` in `args`
 * (taken out of `args`), or else from a snapshot of the current dist/.
 */
function useCodeFromArgs(args) {
	const at = args.indexOf("--ref");
	const ref = at >= 0 ? args.splice(at, 2)[1] : null;
	const results = path.join(__dirname, "results");
	if (ref) buildRef(ref, path.join(results, `.src-${process.pid}`));
	else snapshotDist(path.join(results, `.dist-${process.pid}`));
}

/** Runs a helper script's `main`, then stops every process it started, even after a failure. */
function runMain(main) {
	main()
		.catch(err => {
			console.error(err);
			process.exitCode = 1;
		})
		.finally(() => stopAll({ final: true }));
}

module.exports = {
	runMain,
	useCodeFromArgs,
	ROOT,
	snapshotDist,
	buildRef,
	startEmbedded,
	startCluster,
	startFloor,
	stopAll,
	tempDir,
	sleep,
	waitForHealthy
};
