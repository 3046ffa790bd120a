/**
 * The cluster between hosts: every node's links to NATS and to the store run through toxiproxy
 * (scripts/servers.js), which adds latency as real networks do. Measures, on the real cluster
 * (one shows, one reservations, one api process; nats-server; FerretDB):
 *
 *  - checkout latency (p50, p99), cancel latency and checkout throughput with 0, 1 and 5 ms added
 *    per hop, each way on every link (a broker call api -> NATS -> shows and back crosses 4 hops;
 *    a store round trip 2);
 *  - how many sequential broker and store round trips a checkout and a cancel make: one client,
 *    first on clean links, then with PROBE_MS added per hop on the NATS links only, then on the
 *    shows node's store link only, then on the reservations node's. Each added broker round trip
 *    costs 4 × PROBE_MS, each store round trip 2 × PROBE_MS, so the extra median time divided by
 *    that is the count.
 *
 *   npm run bench -- --only latency        (or node bench/latency.js [--quick] for this alone)
 */
"use strict";
/* global fetch, URL, AbortSignal */

const procs = require("./procs");
const { round } = require("./load");
const { startToxiproxy, freePort } = require("../scripts/servers");

const ADDED_MS = [0, 1, 5];
const PROBE_MS = 50;
/** Long enough for the deferred writes of one checkout or cancel at PROBE_MS per hop. */
const SETTLE_PAUSE_MS = 1000;
const SHOWS = 8;
/** What each round-trip probe slows down, and how many hops one round trip there crosses. */
const PROBES = {
	broker: ["nats"],
	showsStore: ["store:shows-1"],
	reservationsStore: ["store:reservations-1"]
};
const PROBE_HOPS = { broker: 4, showsStore: 2, reservationsStore: 2 };
const CONNECTIONS = 16;

const sleep = ms => new Promise(r => setTimeout(r, ms));

function percentile(sorted, p) {
	if (sorted.length === 0) return null;
	return sorted[
		Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
	];
}

/** toxiproxy's HTTP API, the three calls used here (the typed client is test/support/toxiproxy.ts). */
function toxiproxyApi(apiUrl) {
	const call = async (method, path, body) => {
		const res = await fetch(`${apiUrl}${path}`, {
			method,
			headers: { "content-type": "application/json" },
			body: body && JSON.stringify(body)
		});
		if (!res.ok)
			throw new Error(`toxiproxy ${method} ${path}: ${res.status} ${await res.text()}`);
	};
	return {
		createProxy: (name, listen, upstream) =>
			call("POST", "/proxies", { name, listen, upstream, enabled: true }),
		latency: (proxy, ms) =>
			Promise.all(
				["upstream", "downstream"].map(stream =>
					call("POST", `/proxies/${proxy}/toxics`, {
						name: `latency-${stream}`,
						type: "latency",
						stream,
						attributes: { latency: ms }
					})
				)
			),
		reset: () => call("POST", "/reset")
	};
}

/** The cluster with each node's TRANSPORTER and MONGO_URI behind proxies of its own. */
async function startProxiedCluster() {
	const toxiproxy = await startToxiproxy();
	const toxi = toxiproxyApi(toxiproxy.apiUrl);
	/** Proxy names by link kind and node: `nats` → `shows-1` → `shows-1-nats`. */
	const proxies = { nats: {}, store: {} };
	const nodeEnv = async (nodeId, env) => {
		const routed = { ...env };
		for (const [upstream, variable] of [
			["nats", "TRANSPORTER"],
			["store", "MONGO_URI"]
		]) {
			const url = new URL(env[variable]);
			const listen = `127.0.0.1:${await freePort()}`;
			const name = `${nodeId}-${upstream}`;
			await toxi.createProxy(name, listen, url.host);
			proxies[upstream][nodeId] = name;
			url.host = listen;
			routed[variable] = url.toString();
		}
		return routed;
	};
	try {
		const cluster = await procs.startCluster({ extraShows: SHOWS, nodeEnv });
		return {
			...cluster,
			/**
			 * Sets the latency added per hop on the chosen links, the others get none: `links` are
			 * `nats`, `store` (every node's) or `store:<node id>`.
			 */
			async setLatency(ms, links = ["nats", "store"]) {
				await toxi.reset();
				const names = links.flatMap(link => {
					const [kind, nodeId] = link.split(":");
					return nodeId ? [proxies[kind][nodeId]] : Object.values(proxies[kind]);
				});
				if (ms > 0) await Promise.all(names.map(name => toxi.latency(name, ms)));
			},
			async stop() {
				await cluster.stop();
				await toxiproxy.stop();
			}
		};
	} catch (err) {
		await toxiproxy.stop();
		throw err;
	}
}

async function timed(request) {
	const started = process.hrtime.bigint();
	const res = await request();
	const body = await res.json();
	return { status: res.status, body, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

/**
 * One checkout, then (after `pauseMs`) its cancel; returns both timings (cancel null if the
 * checkout failed).
 */
async function checkoutAndCancel(baseUrl, showID, pauseMs = 0) {
	const checkout = await timed(() =>
		fetch(`${baseUrl}/reserve`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "Latency bench", count: 1, showID }),
			signal: AbortSignal.timeout(30000)
		})
	);
	if (checkout.status !== 201) return { checkout, cancel: null };
	if (pauseMs > 0) await sleep(pauseMs);
	const cancel = await timed(() =>
		fetch(`${baseUrl}/reservations/${checkout.body._id}`, {
			method: "DELETE",
			signal: AbortSignal.timeout(30000)
		})
	);
	return { checkout, cancel };
}

/** `connections` clients doing checkout + cancel for `seconds` after `warmup` seconds. */
async function measure(cluster, { connections, seconds, warmup }) {
	const checkoutMs = [];
	const cancelMs = [];
	const statuses = {};
	let measuring = false;
	let running = true;
	const clients = Array.from({ length: connections }, async (_, c) => {
		for (let i = 0; running; i++) {
			const showID = cluster.showIDs[(c + i) % cluster.showIDs.length];
			const { checkout, cancel } = await checkoutAndCancel(cluster.baseUrl, showID);
			if (!measuring) continue;
			for (const answer of [checkout, cancel].filter(Boolean))
				statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
			if (checkout.status === 201) checkoutMs.push(checkout.ms);
			if (cancel?.status === 200) cancelMs.push(cancel.ms);
		}
	});
	await sleep(warmup * 1000);
	measuring = true;
	const started = Date.now();
	await sleep(seconds * 1000);
	measuring = false;
	const elapsedS = (Date.now() - started) / 1000;
	running = false;
	await Promise.all(clients);
	const sortedCheckout = checkoutMs.sort((a, b) => a - b);
	const sortedCancel = cancelMs.sort((a, b) => a - b);
	return {
		checkouts: checkoutMs.length,
		checkoutsPerSec: round(checkoutMs.length / elapsedS),
		checkoutP50Ms: round(percentile(sortedCheckout, 50)),
		checkoutP99Ms: round(percentile(sortedCheckout, 99)),
		cancelP50Ms: round(percentile(sortedCancel, 50)),
		cancelP99Ms: round(percentile(sortedCancel, 99)),
		statuses
	};
}

/**
 * Median checkout and cancel time of one client alone, `n` times in a row. The cancel waits
 * SETTLE_PAUSE_MS, so that it does not queue behind the write that shows defers after a checkout
 * (it settles the sale in a records collection); each operation is timed on its own.
 */
async function sequentialMedians(cluster, n) {
	const checkoutMs = [];
	const cancelMs = [];
	for (let i = 0; i < n; i++) {
		const { checkout, cancel } = await checkoutAndCancel(
			cluster.baseUrl,
			cluster.showIDs[i % cluster.showIDs.length],
			SETTLE_PAUSE_MS
		);
		await sleep(SETTLE_PAUSE_MS);
		if (checkout.status !== 201 || cancel?.status !== 200)
			throw new Error(`checkout ${checkout.status}, cancel ${cancel?.status}`);
		checkoutMs.push(checkout.ms);
		cancelMs.push(cancel.ms);
	}
	const median = xs =>
		percentile(
			xs.sort((a, b) => a - b),
			50
		);
	return { checkout: median(checkoutMs), cancel: median(cancelMs) };
}

/** Sequential round trips per checkout and cancel, from the time PROBE_MS per hop adds. */
async function countRoundTrips(cluster, n) {
	await cluster.setLatency(0);
	await sequentialMedians(cluster, 5);
	const clean = await sequentialMedians(cluster, n);
	const medianMs = { clean };
	for (const [probe, links] of Object.entries(PROBES)) {
		await cluster.setLatency(PROBE_MS, links);
		medianMs[probe] = await sequentialMedians(cluster, n);
	}
	await cluster.setLatency(0);
	const count = (op, probe) =>
		round((medianMs[probe][op] - clean[op]) / (PROBE_HOPS[probe] * PROBE_MS), 2);
	const counts = op => Object.fromEntries(Object.keys(PROBES).map(p => [p, count(op, p)]));
	return {
		probeMs: PROBE_MS,
		samples: n,
		medianMs,
		checkout: counts("checkout"),
		cancel: counts("cancel")
	};
}

function table(result) {
	const rows = [
		`Cluster through toxiproxy: ${result.connections} clients, each a checkout then its cancel, ` +
			`over and over (${result.warmupS} s warm-up, ${result.durationS} s measured per row); ` +
			`latency added each way on every node's links to NATS and to the store.`,
		"",
		"| added per hop | checkouts/s | checkout p50 | checkout p99 | cancel p50 | cancel p99 | answers |",
		"|---|---|---|---|---|---|---|",
		...result.perHop.map(
			r =>
				`| ${r.addedMs} ms | ${r.checkoutsPerSec} | ${r.checkoutP50Ms} ms | ${r.checkoutP99Ms} ms | ` +
				`${r.cancelP50Ms} ms | ${r.cancelP99Ms} ms | ${Object.entries(r.statuses)
					.map(([s, n]) => `${s}: ${n}`)
					.join(", ")} |`
		)
	];
	const rt = result.roundTrips;
	const m = rt.medianMs;
	const probes = Object.keys(PROBES);
	rows.push(
		"",
		`Sequential round trips (one client; ${rt.probeMs} ms per hop added on one kind of link, ` +
			`median of ${rt.samples}, each operation ${SETTLE_PAUSE_MS} ms after the last; ` +
			`extra time / (hops × ${rt.probeMs} ms)):`,
		"",
		"| | broker | shows store | reservations store | median clean | " +
			"+ NATS links | + shows store | + reservations store |",
		"|---|---|---|---|---|---|---|---|",
		...["checkout", "cancel"].map(
			op =>
				`| ${op} | ${probes.map(p => rt[op][p]).join(" | ")} | ${round(m.clean[op])} ms | ` +
				`${probes.map(p => `${round(m[p][op])} ms`).join(" | ")} |`
		)
	);
	return rows.join("\n");
}

/** The bench section: `out.latency` gets the figures and a markdown report. */
async function run(cfg, out) {
	const cluster = await startProxiedCluster();
	try {
		const perHop = [];
		for (const addedMs of ADDED_MS) {
			await cluster.setLatency(addedMs);
			const r = await measure(cluster, {
				connections: CONNECTIONS,
				seconds: cfg.duration,
				warmup: cfg.warmup
			});
			perHop.push({ addedMs, ...r });
			process.stderr.write(`latency: +${addedMs} ms per hop: ${JSON.stringify(r)}\n`);
		}
		const roundTrips = await countRoundTrips(cluster, cfg.quick ? 8 : 20);
		process.stderr.write(`latency: round trips ${JSON.stringify(roundTrips)}\n`);
		out.latency = {
			connections: CONNECTIONS,
			warmupS: cfg.warmup,
			durationS: cfg.duration,
			perHop,
			roundTrips
		};
		out.latency.report = table(out.latency);
	} finally {
		await cluster.stop();
	}
}

module.exports = { run };

if (require.main === module) {
	const quick = process.argv.includes("--quick");
	procs.runMain(async () => {
		procs.useCodeFromArgs(process.argv.slice(2));
		const out = {};
		await run({ quick, duration: quick ? 3 : 8, warmup: quick ? 1 : 3 }, out);
		process.stdout.write(out.latency.report + "\n");
	});
}
