/**
 * The surge's load client, in a process of its own (bench/surge.js runs it): `connections` buyers
 * POST 2-seat checkouts back to back for `duration` seconds over keep-alive connections, while two
 * readers GET / and GET /shows/<showID> in a loop. Records each answer's latency by its status,
 * over the whole run and apart for the requests sent once the crowd is in (2 s after the start),
 * and prints one JSON object.
 * A buyer refused with 503 waits its Retry-After before trying again, as the box office does;
 * `ignore-retry-after` makes the crowd retry at once instead, as wrk and impatient scripts do.
 *
 * It speaks HTTP/1.1 over bare sockets, as wrk does, rather than through `http.request`: on a
 * 2-core machine the client shares the cores with the system it measures, and Node's client took
 * a whole core while 4,000 buyers arrived, which the system's answers then waited for.
 *
 *   node bench/surge-client.js <baseUrl> <showID> <connections> <durationS> [ignore-retry-after]
 */
"use strict";

const net = require("node:net");
const { monitorEventLoopDelay } = require("node:perf_hooks");
const { URL } = require("node:url");

const [baseUrl, showID, connectionsArg, durationArg, retryMode] = process.argv.slice(2);
const honoursRetryAfter = retryMode !== "ignore-retry-after";
const connections = Number(connectionsArg);
const durationMs = Number(durationArg) * 1000;
const url = new URL(baseUrl);
/** A client gives up on an answer after this long (counted as status 0). */
const CLIENT_TIMEOUT_MS = 30000;
/** The buyers' first requests spread over this long. */
const ARRIVAL_MS = 1000;
/** Answers to requests sent this long after the start are also reported apart: the crowd is in. */
const SETTLED_AFTER_MS = ARRIVAL_MS + 1000;

const percentile = (sorted, p) =>
	sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : null;
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const round = x => (x === null ? null : Math.round(x * 10) / 10);
let connectionsOpened = 0;

/** The bytes of one request, made once: every buyer sends the same. */
function requestBytes(method, path, body) {
	const head = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`];
	if (body)
		head.push("Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`);
	return Buffer.from(`${head.join("\r\n")}\r\n\r\n${body ?? ""}`);
}

/** A header's value in a head (lower-cased), or null. */
function headerOf(head, name) {
	const at = head.indexOf(`\r\n${name}:`);
	if (at < 0) return null;
	// The head ends without a line break: its last header runs to its end.
	const end = head.indexOf("\r\n", at + 2);
	return head.slice(at + name.length + 3, end < 0 ? head.length : end).trim();
}

/**
 * One keep-alive connection: `send` writes a request and resolves with its answer's status,
 * Retry-After and latency (ms, the connect included for the first). The server's answers carry a
 * Content-Length, or are chunked.
 */
function connection() {
	let socket = null;
	let pending = null;
	let buffered = "";
	/** The request in flight, and whether it went out on a connection that had answered before. */
	let sent = null;
	let reused = false;

	const finish = answer => {
		const done = pending;
		pending = null;
		buffered = "";
		if (done) done(answer);
	};
	const parse = () => {
		const headEnd = buffered.indexOf("\r\n\r\n");
		if (headEnd < 0) return;
		const head = buffered.slice(0, headEnd).toLowerCase();
		const body = buffered.slice(headEnd + 4);
		const length = headerOf(head, "content-length");
		const complete =
			length !== null ? body.length >= Number(length) : body.endsWith("0\r\n\r\n");
		if (!complete) return;
		const retryAfter = headerOf(head, "retry-after");
		if (headerOf(head, "connection") === "close") socket.destroy();
		finish({ status: Number(head.slice(9, 12)), retryAfter: retryAfter && Number(retryAfter) });
	};
	const open = () => {
		connectionsOpened++;
		const opened = net.connect({ host: url.hostname, port: Number(url.port) });
		socket = opened;
		opened.setNoDelay(true);
		opened.setEncoding("latin1");
		opened.setTimeout(CLIENT_TIMEOUT_MS, () => opened.destroy());
		opened.on("data", chunk => {
			buffered += chunk;
			parse();
		});
		opened.on("error", () => {});
		// A socket closed after its answer (Connection: close) must not fail the next request.
		opened.on("close", () => {
			if (socket !== opened) return;
			socket = null;
			// The server closed an idle connection as the request went out: sent again on a new
			// one, as browsers do when a reused connection closes before any answer.
			if (pending && reused && buffered === "") {
				reused = false;
				open();
				socket.write(sent);
			} else finish({ status: 0, retryAfter: null });
		});
	};
	return {
		send(bytes) {
			const started = process.hrtime.bigint();
			return new Promise(resolve => {
				pending = answer =>
					resolve({ ...answer, ms: Number(process.hrtime.bigint() - started) / 1e6 });
				reused = Boolean(socket && !socket.destroyed);
				if (!reused) open();
				sent = bytes;
				socket.write(bytes);
			});
		},
		close: () => socket?.destroy()
	};
}

async function main() {
	const checkout = requestBytes(
		"POST",
		"/reserve",
		JSON.stringify({ showID, name: "Surge", count: 2 })
	);
	const list = requestBytes("GET", "/");
	const showRead = requestBytes("GET", `/shows/${showID}`);
	const byStatus = {};
	/** The same, for requests sent once the crowd is in. */
	const settledByStatus = {};
	/** Bookings answered between then and the end: the pace the node keeps once the crowd is in. */
	let bookedOnceIn = 0;
	let busyWithRetryAfter = 0;
	const reads = [];
	const showReads = [];
	const ends = Date.now() + durationMs;
	const started = Date.now();
	const cpuBefore = process.cpuUsage();
	// The client's own lag is in every latency it records: it is reported, to be kept small.
	const lag = monitorEventLoopDelay({ resolution: 10 });
	lag.enable();

	// The crowd arrives over the first second, not in one instant: an on-sale's opening click
	// spreads over human reaction times, and a herd of SYNs in one millisecond is a SYN flood.
	// Every buyer keeps its connection while it waits out a Retry-After, as a browser tab would.
	const buyer = async index => {
		await sleep((index / connections) * ARRIVAL_MS);
		const conn = connection();
		while (Date.now() < ends) {
			const sentAt = Date.now();
			const a = await conn.send(checkout);
			(byStatus[a.status] ??= []).push(a.ms);
			if (sentAt - started >= SETTLED_AFTER_MS) (settledByStatus[a.status] ??= []).push(a.ms);
			const answeredAt = Date.now();
			if (a.status === 201 && answeredAt - started >= SETTLED_AFTER_MS && answeredAt <= ends)
				bookedOnceIn++;
			if (a.status === 503 && a.retryAfter !== null) {
				busyWithRetryAfter++;
				if (honoursRetryAfter)
					await sleep(Math.min(a.retryAfter * 1000, ends - Date.now()));
			}
			// A transport error: a moment before the next connection, as a browser would.
			if (a.status === 0) await sleep(100);
		}
		conn.close();
	};
	// Two readers, each on a connection of its own: the list, and the show on sale.
	const reader = async (request, into) => {
		const conn = connection();
		while (Date.now() < ends) {
			const a = await conn.send(request);
			into.push(a.status === 200 ? a.ms : CLIENT_TIMEOUT_MS);
		}
		conn.close();
	};
	await Promise.all([
		reader(list, reads),
		reader(showRead, showReads),
		...Array.from({ length: connections }, (_, i) => buyer(i))
	]);
	const seconds = (Date.now() - started) / 1000;
	const cpu = process.cpuUsage(cpuBefore);

	const sorted = values => [...(values ?? [])].sort((a, b) => a - b);
	const refusalsOf = statuses =>
		sorted(
			Object.entries(statuses)
				.filter(([status]) => status !== "201" && status !== "0")
				.flatMap(([, values]) => values)
		);
	const booked = sorted(byStatus[201]);
	const busy = sorted(byStatus[503]);
	const refusals = refusalsOf(byStatus);
	const readSummary = times => {
		const ordered = sorted(times);
		return {
			n: ordered.length,
			p50: round(percentile(ordered, 0.5)),
			p99: round(percentile(ordered, 0.99))
		};
	};
	const result = {
		connections,
		honoursRetryAfter,
		connectionsOpened,
		seconds: round(seconds),
		statuses: Object.fromEntries(Object.entries(byStatus).map(([s, l]) => [s, l.length])),
		bookingsPerS: Math.round(booked.length / seconds),
		booked: { p50: round(percentile(booked, 0.5)), p99: round(percentile(booked, 0.99)) },
		refused: { p50: round(percentile(refusals, 0.5)), p99: round(percentile(refusals, 0.99)) },
		settled: {
			bookingsPerS: Math.round(bookedOnceIn / ((durationMs - SETTLED_AFTER_MS) / 1000)),
			bookedP99: round(percentile(sorted(settledByStatus[201]), 0.99)),
			refusedP99: round(percentile(refusalsOf(settledByStatus), 0.99))
		},
		clientLagP99: round(lag.percentile(99) / 1e6),
		clientCores: round((cpu.user + cpu.system) / 1e6 / seconds),
		busyWithRetryAfter: busy.length ? round(busyWithRetryAfter / busy.length) : null,
		getRoot: readSummary(reads),
		getShow: readSummary(showReads)
	};
	process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch(err => {
	console.error(err);
	process.exitCode = 1;
});
