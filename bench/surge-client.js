/**
 * The surge's load client, in a process of its own (bench/surge.js runs it): `connections` buyers
 * POST 2-seat checkouts back to back for `duration` seconds over keep-alive connections, while one
 * reader GETs / in a loop. Records each answer's latency by its status, and prints one JSON object.
 * A buyer refused with 503 waits its Retry-After before trying again, as the box office does;
 * `ignore-retry-after` makes the crowd retry at once instead, as wrk and impatient scripts do.
 *
 *   node bench/surge-client.js <baseUrl> <showID> <connections> <durationS> [ignore-retry-after]
 */
"use strict";

const http = require("node:http");
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

const percentile = (sorted, p) =>
	sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : null;
/** Every socket opened, to count connections (a refusal that closed its connection costs a new one). */
const sockets = new Set();
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
const round = x => (x === null ? null : Math.round(x * 10) / 10);

function request(agent, method, path, body) {
	return new Promise(resolve => {
		const started = process.hrtime.bigint();
		const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
		const headers = body
			? { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
			: {};
		const req = http.request(
			{ agent, host: url.hostname, port: url.port, method, path, headers },
			res => {
				const header = res.headers["retry-after"];
				const retryAfter = header === undefined ? null : Number(header);
				res.resume();
				res.on("end", () => resolve({ status: res.statusCode, ms: ms(), retryAfter }));
				res.on("error", () => resolve({ status: 0, ms: ms(), retryAfter: null }));
			}
		);
		req.once("socket", socket => sockets.add(socket));
		req.setTimeout(CLIENT_TIMEOUT_MS, () => req.destroy());
		req.on("error", () => resolve({ status: 0, ms: ms(), retryAfter: null }));
		req.end(body);
	});
}

async function main() {
	// Every buyer keeps its connection while it waits out a Retry-After, as a browser tab would.
	const agent = new http.Agent({
		keepAlive: true,
		maxSockets: connections,
		maxFreeSockets: connections
	});
	const readAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
	const body = JSON.stringify({ showID, name: "Surge", count: 2 });
	const byStatus = {};
	let busyWithRetryAfter = 0;
	const reads = [];
	const ends = Date.now() + durationMs;
	const started = Date.now();
	const cpuBefore = process.cpuUsage();
	// The client's own lag is in every latency it records: it is reported, to be kept small.
	const lag = monitorEventLoopDelay({ resolution: 10 });
	lag.enable();

	// The crowd arrives over the first second, not in one instant: an on-sale's opening click
	// spreads over human reaction times, and a herd of SYNs in one millisecond is a SYN flood.
	const buyer = async index => {
		await sleep((index / connections) * ARRIVAL_MS);
		while (Date.now() < ends) {
			const a = await request(agent, "POST", "/reserve", body);
			(byStatus[a.status] ??= []).push(a.ms);
			if (a.status === 503 && a.retryAfter !== null) {
				busyWithRetryAfter++;
				if (honoursRetryAfter)
					await sleep(Math.min(a.retryAfter * 1000, ends - Date.now()));
			}
			// A transport error: a moment before the next connection, as a browser would.
			if (a.status === 0) await sleep(100);
		}
	};
	const reader = async () => {
		while (Date.now() < ends) {
			const a = await request(readAgent, "GET", "/");
			reads.push(a.status === 200 ? a.ms : CLIENT_TIMEOUT_MS);
		}
	};
	await Promise.all([reader(), ...Array.from({ length: connections }, (_, i) => buyer(i))]);
	const seconds = (Date.now() - started) / 1000;
	const cpu = process.cpuUsage(cpuBefore);

	const sorted = list => [...(list ?? [])].sort((a, b) => a - b);
	const booked = sorted(byStatus[201]);
	const busy = sorted(byStatus[503]);
	const refusals = sorted(
		Object.entries(byStatus)
			.filter(([status]) => status !== "201" && status !== "0")
			.flatMap(([, list]) => list)
	);
	const readTimes = sorted(reads);
	const result = {
		connections,
		honoursRetryAfter,
		connectionsOpened: sockets.size,
		seconds: round(seconds),
		statuses: Object.fromEntries(Object.entries(byStatus).map(([s, l]) => [s, l.length])),
		bookingsPerS: Math.round(booked.length / seconds),
		booked: { p50: round(percentile(booked, 0.5)), p99: round(percentile(booked, 0.99)) },
		refused: { p50: round(percentile(refusals, 0.5)), p99: round(percentile(refusals, 0.99)) },
		clientLagP99: round(lag.percentile(99) / 1e6),
		clientCores: round((cpu.user + cpu.system) / 1e6 / seconds),
		busyWithRetryAfter: busy.length ? round(busyWithRetryAfter / busy.length) : null,
		getRoot: {
			n: readTimes.length,
			p50: round(percentile(readTimes, 0.5)),
			p99: round(percentile(readTimes, 0.99))
		}
	};
	agent.destroy();
	readAgent.destroy();
	process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch(err => {
	console.error(err);
	process.exitCode = 1;
});
