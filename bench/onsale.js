/**
 * The big on-sale: an operator adds a 100,000-seat show (`shows.create`, as the REPL does), then
 * 10,000 checkouts of 10 seats sell it out, 32 at once. Run embedded (with the operator joining over
 * NATS) and as a cluster on FerretDB. Prints checkouts/s for each tenth of the sale, p99, the store
 * on disk (embedded), the largest document in each store, and GET /shows/:id at start and end.
 *
 *   node bench/onsale.js [--seats 100000] [--per-order 10] [--connections 32] [--only embedded]
 * Also run by `npm run bench -- --only onsale`.
 */
"use strict";
/* global fetch */

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { ServiceBroker } = require("moleculer");
const { MongoClient } = require("mongodb");
const procs = require("./procs");
const { startNats } = require("../scripts/servers");

const TARGETS = {
	lastToFirst: 0.8,
	bytesPerBooking: 4096,
	largestDocument: 64 * 1024,
	/** As many checkouts refused for the sold-out show, against the time of the sale. */
	refusedShare: 0.1
};

const log = msg =>
	process.stderr.write(`[onsale ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

function percentile(sorted, p) {
	return sorted.length
		? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
		: null;
}

async function operatorCreatesShow(transporter, namespace, seats) {
	const operator = new ServiceBroker({
		namespace,
		nodeID: `operator-${process.pid}`,
		transporter,
		logger: false
	});
	await operator.start();
	try {
		await operator.waitForServices(["shows"], 30000);
		return await operator.call("shows.create", { name: "Stadium", houseSize: seats });
	} finally {
		await operator.stop();
	}
}

async function showLatency(baseUrl, showID, n = 200) {
	const times = [];
	for (let i = 0; i < n; i++) {
		const t = process.hrtime.bigint();
		const res = await fetch(`${baseUrl}/shows/${showID}`);
		await res.arrayBuffer();
		times.push(Number(process.hrtime.bigint() - t) / 1e6);
	}
	times.sort((a, b) => a - b);
	return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) };
}

/** Sells the show out: `connections` buyers in a loop until the house is full. */
async function sell(baseUrl, showID, { checkouts, perOrder, connections }) {
	const done = [];
	const statuses = {};
	let next = 0;
	const buyer = async () => {
		while (next < checkouts) {
			next++;
			const started = process.hrtime.bigint();
			const res = await fetch(`${baseUrl}/reserve`, {
				method: "POST",
				headers: { "content-type": "application/json" },
				body: JSON.stringify({ name: "Fan", count: perOrder, showID })
			});
			await res.arrayBuffer();
			statuses[res.status] = (statuses[res.status] ?? 0) + 1;
			const ms = Number(process.hrtime.bigint() - started) / 1e6;
			if (res.status === 201) done.push({ at: Date.now(), ms });
		}
	};
	const startedAt = Date.now();
	await Promise.all(Array.from({ length: connections }, buyer));
	const tenth = Math.floor(done.length / 10);
	const rates = [];
	for (let i = 0; i < 10 && tenth > 0; i++) {
		const from = i === 0 ? startedAt : done[i * tenth - 1].at;
		const to = done[(i + 1) * tenth - 1].at;
		rates.push(Math.round((tenth * 1000) / Math.max(1, to - from)));
	}
	const latencies = done.map(d => d.ms).sort((a, b) => a - b);
	return {
		booked: done.length,
		statuses,
		seconds: (Date.now() - startedAt) / 1000,
		ratesPerTenth: rates,
		lastToFirst: rates.length ? Math.round((rates[9] / rates[0]) * 100) / 100 : null,
		p50: percentile(latencies, 0.5),
		p99: percentile(latencies, 0.99)
	};
}

/**
 * As many checkouts again for the sold-out show, all refused: timed with wrk (a client that is
 * not the bottleneck) when the machine has it, as the time `checkouts` of them take at its rate;
 * otherwise with the same fetch client as the sale.
 */
async function refuse(baseUrl, showID, { checkouts, perOrder, connections }) {
	const wrk = (process.env.PATH ?? "").split(":").find(dir => dir && fs.existsSync(`${dir}/wrk`));
	if (!wrk)
		return {
			...(await sell(baseUrl, showID, { checkouts, perOrder, connections })),
			client: "fetch"
		};
	const script = path.join(procs.tempDir("bench-refuse-"), "refuse.lua");
	fs.writeFileSync(
		script,
		`wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n` +
			`wrk.body = '${JSON.stringify({ name: "Late", count: perOrder, showID })}'\n`
	);
	// A second of warm-up first: the refusal path has not run during the sale.
	const run = seconds =>
		execFileSync(
			`${wrk}/wrk`,
			["-t1", `-c${connections}`, `-d${seconds}s`, "-s", script, `${baseUrl}/reserve`],
			{ encoding: "utf8" }
		);
	run(1);
	const out = run(5);
	const requests = Number(/(\d+) requests in/.exec(out)[1]);
	const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]);
	const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
	// Every answer must be a refusal: a 2xx here would be a seat sold twice.
	return {
		statuses: { 409: non2xx, other: requests - non2xx },
		seconds: checkouts / rate,
		client: "wrk"
	};
}

function folderBytes(dir) {
	let total = 0;
	for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
		const full = path.join(dir, entry.name);
		total += entry.isDirectory() ? folderBytes(full) : fs.statSync(full).size;
	}
	return total;
}

/** The largest document an embedded store holds: its longest line, per file. */
function largestNedbDocuments(dir) {
	const out = {};
	for (const store of fs.readdirSync(dir)) {
		for (const file of fs.readdirSync(path.join(dir, store)).filter(f => f.endsWith(".db"))) {
			const lines = fs.readFileSync(path.join(dir, store, file), "utf8").split("\n");
			out[`${store}/${file.replace(/\.db$/, "")}`] = Math.max(
				0,
				...lines.map(l => Buffer.byteLength(l))
			);
		}
	}
	return out;
}

async function largestMongoDocuments(uri) {
	const client = new MongoClient(uri, { useUnifiedTopology: true });
	await client.connect();
	const out = {};
	try {
		for (const database of ["shows", "reservations"]) {
			const db = client.db(database);
			for (const { name } of await db.listCollections().toArray()) {
				let largest = 0;
				for (const doc of await db.collection(name).find({}).toArray())
					largest = Math.max(largest, Buffer.byteLength(JSON.stringify(doc)));
				out[`${database}/${name}`] = largest;
			}
		}
	} finally {
		await client.close();
	}
	return out;
}

/** Samples the show's document while the sale runs; resolves to the largest size seen. */
function watchDocument(uri, showID) {
	const client = new MongoClient(uri, { useUnifiedTopology: true });
	let running = true;
	let largest = 0;
	const sampling = (async () => {
		await client.connect();
		const shows = client.db("shows").collection("shows");
		const { ObjectId } = require("mongodb");
		while (running) {
			const doc = await shows.findOne({ _id: new ObjectId(showID) });
			largest = Math.max(largest, Buffer.byteLength(JSON.stringify(doc)));
			await procs.sleep(250);
		}
		await client.close();
	})();
	return {
		async stop() {
			running = false;
			await sampling;
			return largest;
		}
	};
}

async function runOnsale(kind, opts) {
	const checkouts = Math.ceil(opts.seats / opts.perOrder);
	log(`${kind}: starting`);
	let target;
	let showID;
	if (kind === "embedded") {
		const nats = await startNats();
		const namespace = `onsale-${process.pid}`;
		target = await procs.startEmbedded({
			env: { TRANSPORTER: nats.url, NAMESPACE: namespace }
		});
		const stop = target.stop;
		target.stop = async () => {
			await stop();
			await nats.stop();
		};
		showID = (await operatorCreatesShow(nats.url, namespace, opts.seats))._id;
	} else {
		target = await procs.startCluster({ extraShows: 1, extraShowSeats: opts.seats });
		showID = target.showIDs[0];
	}
	try {
		const before = await showLatency(target.baseUrl, showID);
		log(
			`${kind}: selling ${opts.seats} seats in ${checkouts} checkouts of ${opts.perOrder}, ${opts.connections} at once`
		);
		const watch = kind === "cluster" ? watchDocument(target.mongoUri, showID) : null;
		const sale = await sell(target.baseUrl, showID, {
			checkouts,
			perOrder: opts.perOrder,
			connections: opts.connections
		});
		const show = await (await fetch(`${target.baseUrl}/shows/${showID}`)).json();
		const after = await showLatency(target.baseUrl, showID);
		// As many checkouts again, now for a sold-out show: refused, and how much cheaper.
		const refused = await refuse(target.baseUrl, showID, {
			checkouts,
			perOrder: opts.perOrder,
			connections: opts.connections
		});
		const result = {
			kind,
			show,
			sale,
			refused: {
				statuses: refused.statuses,
				seconds: refused.seconds,
				client: refused.client,
				shareOfSale: Math.round((refused.seconds / sale.seconds) * 1000) / 1000
			},
			getShow: { before, after }
		};
		if (kind === "embedded") {
			result.storeBytes = folderBytes(target.dataDir);
			result.bytesPerBooking = Math.round(result.storeBytes / Math.max(1, sale.booked));
			result.largestDocuments = largestNedbDocuments(target.dataDir);
		} else {
			result.largestDocuments = await largestMongoDocuments(target.mongoUri);
			result.largestDocuments["shows/shows during the sale"] = await watch.stop();
		}
		return result;
	} finally {
		await target.stop();
	}
}

function report(results) {
	const lines = [
		"| run | sold | 201 / other | checkouts/s per tenth of the sale | last ÷ first | p50 / p99 ms | GET /shows/:id p50 / p99 ms, start → end | store on disk | largest document | as many refused after |",
		"|---|---|---|---|---|---|---|---|---|---|"
	];
	for (const r of results) {
		const other =
			Object.entries(r.sale.statuses)
				.filter(([s]) => s !== "201")
				.map(([s, n]) => `${n}×${s}`)
				.join(" ") || "0";
		const largest = Object.entries(r.largestDocuments).sort((a, b) => b[1] - a[1])[0];
		lines.push(
			`| ${r.kind} | ${r.show.reserved.toLocaleString("en")} / ${r.show.houseSize.toLocaleString("en")} | ${r.sale.booked} / ${other} | ${r.sale.ratesPerTenth.join(" ")} | ${r.sale.lastToFirst} (≥ ${TARGETS.lastToFirst}) | ${r.sale.p50.toFixed(1)} / ${r.sale.p99.toFixed(1)} | ${r.getShow.before.p50.toFixed(2)} / ${r.getShow.before.p99.toFixed(2)} → ${r.getShow.after.p50.toFixed(2)} / ${r.getShow.after.p99.toFixed(2)} | ${r.storeBytes ? `${(r.storeBytes / 1048576).toFixed(1)} MiB, ${r.bytesPerBooking} B/booking (≤ ${TARGETS.bytesPerBooking})` : "-"} | ${largest[1].toLocaleString("en")} B (${largest[0]}; ≤ ${TARGETS.largestDocument}) | ${r.refused.seconds.toFixed(1)} s (${r.refused.client}), ${Math.round(r.refused.shareOfSale * 100)}% of the sale (≤ ${TARGETS.refusedShare * 100}%) |`
		);
	}
	return lines.join("\n") + "\n";
}

/** True when a run meets the issue's targets: exact sell-out, no 5xx, flat rate, small store. */
function passes(r) {
	const fiveXX = Object.keys(r.sale.statuses).some(s => Number(s) >= 500);
	const largest = Math.max(...Object.values(r.largestDocuments));
	return (
		r.show.available === 0 &&
		!fiveXX &&
		r.sale.lastToFirst >= TARGETS.lastToFirst &&
		r.refused.shareOfSale <= TARGETS.refusedShare &&
		!r.refused.statuses.other &&
		largest <= TARGETS.largestDocument &&
		(r.bytesPerBooking === undefined || r.bytesPerBooking <= TARGETS.bytesPerBooking)
	);
}

async function onsale(opts) {
	const results = [];
	for (const kind of opts.kinds) results.push(await runOnsale(kind, opts));
	return { results, report: report(results), pass: results.every(passes) };
}

function parse(argv) {
	const opts = { seats: 100000, perOrder: 10, connections: 32, kinds: ["embedded", "cluster"] };
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "--seats") opts.seats = Number(argv[++i]);
		else if (a === "--per-order") opts.perOrder = Number(argv[++i]);
		else if (a === "--connections") opts.connections = Number(argv[++i]);
		else if (a === "--only") opts.kinds = argv[++i].split(",");
		else throw new Error(`unknown option ${a}`);
	}
	return opts;
}

module.exports = { onsale };

if (require.main === module)
	procs.runMain(async () => {
		const { results, report: text, pass } = await onsale(parse(process.argv.slice(2)));
		fs.mkdirSync(path.join(__dirname, "results"), { recursive: true });
		fs.writeFileSync(
			path.join(__dirname, "results", "onsale.json"),
			JSON.stringify(results, null, 2)
		);
		process.stdout.write(text + (pass ? "targets: PASS\n" : "targets: MISS\n"));
	});
