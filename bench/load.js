/**
 * Workloads, driven by autocannon's programmatic API.
 *
 *   reads   GET <path> on every connection.
 *   pairs   a checkout (POST /reserve, count 1) and then the cancel of exactly that reservation
 *           (DELETE /reservations/<_id of the answer>), over and over on each connection, so the
 *           show never sells out. Throughput is counted in completed pairs (both answers 2xx).
 *
 * Each measured run follows a warm-up run of the same workload against the same target.
 */
"use strict";
/* global fetch, AbortSignal */

const { execFile } = require("node:child_process");
const fs = require("node:fs");
const autocannon = require("autocannon");
const cpu = require("./cpu");

const ROCK = "5b805a00297ae6047030f2e0";

/**
 * On a shared machine (`--wait-idle`): before each measured run, wait until other processes leave
 * the CPU alone, and measure again (up to `retries` times) when they took more than `maxOthers`
 * cores during the run. Off by default.
 */
const idle = { enabled: false, maxOthers: 0.15, waitS: 90, retries: 2 };

function setIdleGuard(options) {
	Object.assign(idle, options);
}

/**
 * Waits until other processes and the hypervisor took less than `maxOthers` cores for 3 s in a
 * row.
 */
async function waitIdle(force = false) {
	if (!idle.enabled && !force) return;
	const deadline = Date.now() + idle.waitS * 1000;
	let calm = 0;
	while (calm < 3 && Date.now() < deadline) {
		const before = cpu.snapshot();
		await new Promise(r => setTimeout(r, 1000));
		const taken = cpu.notOurs(cpu.since(before));
		calm = taken !== null && taken < idle.maxOthers ? calm + 1 : 0;
	}
}

/** Runs `measure` (which reports otherCores) until it ran on an idle machine or retries run out. */
async function guarded(measure) {
	let result;
	for (let attempt = 1; ; attempt++) {
		await waitIdle();
		result = await measure();
		result.attempts = attempt;
		if (!idle.enabled || attempt > idle.retries) return result;
		const taken = cpu.notOurs(result);
		if (taken === null || taken <= idle.maxOthers * 2) return result;
	}
}

function percentile(sorted, p) {
	if (sorted.length === 0) return null;
	const at = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
	return sorted[Math.max(0, at)];
}

function round(x, digits = 1) {
	if (x === null || x === undefined || Number.isNaN(x)) return null;
	const f = 10 ** digits;
	return Math.round(x * f) / f;
}

/**
 * One autocannon run. Latencies of 2xx answers are collected here at full resolution (autocannon's
 * own histogram rounds to whole milliseconds, too coarse for the floor).
 */
function cannon(opts) {
	const latencies = [];
	return new Promise((resolve, reject) => {
		const tracker = autocannon(opts, (err, result) =>
			err ? reject(err) : resolve({ ...result, latencies })
		);
		tracker.on("response", (_client, status, _bytes, ms) => {
			if (status >= 200 && status < 300) latencies.push(ms);
		});
	});
}

/** The parts of an autocannon result that the report uses. */
function summarise(result) {
	const sorted = Float64Array.from(result.latencies).sort();
	const statusCodes = {};
	for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {}))
		statusCodes[code] = count;
	const ok = result["2xx"];
	return {
		durationS: round(result.duration, 2),
		requests: result.requests.total,
		ok2xx: ok,
		reqPerSec: round(ok / result.duration),
		/** Latency of 2xx answers, in ms, per request. */
		p50Ms: round(percentile(sorted, 50), 2),
		p99Ms: round(percentile(sorted, 99), 2),
		maxMs: round(sorted[sorted.length - 1], 2),
		non2xx: result.non2xx,
		/** Sent but not answered when the run ended (normally at most one per connection). */
		unanswered: Math.max(0, result.requests.sent - ok - result.non2xx - result.errors),
		errors: result.errors,
		timeouts: result.timeouts,
		statusCodes,
		bytesPerAnswer: ok > 0 ? Math.round(result.throughput.total / ok) : null
	};
}

/** wrk's path, when the machine has it (Debian package `wrk`), unless BENCH_CLIENT=autocannon. */
function wrkPath() {
	if (process.env.BENCH_CLIENT === "autocannon") return null;
	for (const dir of (process.env.PATH ?? "").split(":"))
		if (dir && fs.existsSync(`${dir}/wrk`)) return `${dir}/wrk`;
	return null;
}

const WRK_UNITS = { us: 0.001, ms: 1, s: 1000 };

/**
 * One wrk run (one thread, in a process of its own, so the client is not the bottleneck), with
 * the CPU it used: the shell's `times` after it reports its children's user and system time.
 */
function wrkRun(wrk, url, { connections, duration, timeout }) {
	const script = `"${wrk}" -t1 -c${connections} -d${duration}s --timeout ${timeout}s --latency -H 'accept: application/json' '${url}'; times`;
	return new Promise((resolve, reject) => {
		execFile("sh", ["-c", script], { maxBuffer: 1 << 20 }, (err, stdout) => {
			if (err) return reject(err);
			const number = re => Number(re.exec(stdout)?.[1] ?? 0);
			const latency = pct => {
				const m = new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s)`).exec(stdout);
				return m ? Number(m[1]) * WRK_UNITS[m[2]] : null;
			};
			const requests = number(/(\d+) requests in/);
			const non2xx = number(/Non-2xx or 3xx responses: (\d+)/);
			const errors =
				/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
			// `times` prints the shell's own times, then its children's (wrk's): user, then system.
			const times = stdout.trim().split("\n").pop().split(/\s+/);
			const seconds = t => {
				const m = /(\d+)m([\d.]+)s/.exec(t ?? "");
				return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
			};
			const ok = requests - non2xx;
			resolve({
				durationS: duration,
				requests,
				ok2xx: ok,
				reqPerSec: round(ok / duration),
				p50Ms: round(latency(50), 2),
				p99Ms: round(latency(99), 2),
				maxMs: null,
				non2xx,
				unanswered: 0,
				errors: errors ? Number(errors[1]) + Number(errors[2]) + Number(errors[3]) : 0,
				timeouts: errors ? Number(errors[4]) : 0,
				statusCodes: {},
				bytesPerAnswer: null,
				client: "wrk",
				clientCores: round((seconds(times[0]) + seconds(times[1])) / duration, 2)
			});
		});
	});
}

/** GET `path` from every connection: with wrk when the machine has it, else autocannon. */
async function reads(baseUrl, { path = "/", connections, duration, warmup, timeout = 10 }) {
	const wrk = wrkPath();
	const url = baseUrl + path;
	const opts = { url, connections, timeout, headers: { accept: "application/json" } };
	const run = wrk
		? seconds => wrkRun(wrk, url, { connections, duration: seconds, timeout })
		: async seconds => summarise(await cannon({ ...opts, duration: seconds }));
	if (warmup > 0) await run(warmup);
	return guarded(async () => {
		const before = cpu.snapshot();
		const result = await run(duration);
		return {
			workload: "reads",
			path,
			connections,
			...result,
			throughput: result.reqPerSec,
			...cpu.since(before)
		};
	});
}

/** Longest wait, after a pairs run, for the pairs still in flight to finish (see `pairs`). */
const DRAIN_MAX_S = 30;

/**
 * Checkout-plus-cancel pairs, spread round-robin over `showIDs`. Returns pairs/s, per-request
 * latency and pair latency (checkout sent → cancel answered), counted over `duration` seconds.
 *
 * A run must not end between a checkout and its cancel: that would leave seats sold, and a few
 * runs would sell the show out. So when the time is up no new checkout starts (connections ask
 * GET /health instead, which is not counted), the pairs in flight finish, and only then does
 * autocannon stop. Everything is counted here, inside the measured window, not by autocannon.
 */
async function pairs(baseUrl, { showIDs = [ROCK], connections, duration, warmup, timeout = 10 }) {
	const run = async seconds => {
		const now = () => process.hrtime.bigint();
		const ms = since => Number(now() - since) / 1e6;
		const state = {
			open: new Set(),
			inFlight: 0,
			draining: false,
			startedAt: now(),
			endedAt: null,
			latencies: [],
			pairMs: [],
			pairsOk: 0,
			statusCodes: {},
			errors: 0,
			timeouts: 0,
			checkoutFailed: 0,
			cancelFailed: 0,
			/** Pairs completed in each second of the run: shows a slowdown as stores grow. */
			perSecond: []
		};
		const answer = (status, since) => {
			if (state.draining) return;
			state.statusCodes[status] = (state.statusCodes[status] ?? 0) + 1;
			if (status >= 200 && status < 300) state.latencies.push(ms(since));
		};
		let next = 0;
		const requests = [
			{
				method: "POST",
				path: "/reserve",
				headers: { "content-type": "application/json" },
				setupRequest(req, ctx) {
					ctx.id = null;
					ctx.drain = state.draining;
					if (ctx.drain)
						return { ...req, method: "GET", path: "/health", headers: {}, body: "" };
					state.inFlight++;
					ctx.started = now();
					const showID = showIDs[next++ % showIDs.length];
					return { ...req, body: JSON.stringify({ name: "Bench", count: 1, showID }) };
				},
				onResponse(status, body, ctx) {
					if (ctx.drain) return;
					answer(status, ctx.started);
					if (status >= 200 && status < 300) {
						try {
							ctx.id = JSON.parse(body)._id;
							state.open.add(ctx.id);
						} catch {
							ctx.id = null;
						}
					}
					if (!ctx.id) {
						state.inFlight--;
						if (!state.draining) state.checkoutFailed++;
					}
				}
			},
			{
				method: "DELETE",
				// No reservation to cancel (the checkout failed): start the next pair instead.
				setupRequest(req, ctx) {
					if (!ctx.id) return null;
					ctx.cancelStarted = now();
					return { ...req, path: `/reservations/${ctx.id}` };
				},
				onResponse(status, _body, ctx) {
					state.inFlight--;
					answer(status, ctx.cancelStarted);
					if (status >= 200 && status < 300) {
						state.open.delete(ctx.id);
						if (state.draining) return;
						state.pairsOk++;
						state.pairMs.push(ms(ctx.started));
						const second = Math.floor(ms(state.startedAt) / 1000);
						state.perSecond[second] = (state.perSecond[second] ?? 0) + 1;
					} else if (!state.draining) state.cancelFailed++;
				}
			}
		];
		const before = cpu.snapshot();
		let usage;
		let drained = true;
		await new Promise((resolve, reject) => {
			const tracker = autocannon(
				{
					url: baseUrl,
					connections,
					duration: seconds + DRAIN_MAX_S + 2,
					timeout,
					requests
				},
				err => (err ? reject(err) : resolve())
			);
			tracker.on("reqError", err => {
				if (state.draining) return;
				state.errors++;
				if (/timed out/.test(String(err?.message))) state.timeouts++;
			});
			setTimeout(() => {
				state.draining = true;
				state.endedAt = now();
				state.inFlightAtEnd = state.inFlight;
				usage = cpu.since(before);
				const deadline = Date.now() + DRAIN_MAX_S * 1000;
				const poll = setInterval(() => {
					if (state.inFlight > 0 && Date.now() < deadline) return;
					drained = state.inFlight <= 0;
					clearInterval(poll);
					tracker.stop();
				}, 50);
			}, seconds * 1000);
		});
		// Anything still open (a drain that ran out of time) is canceled now.
		const leftover = await cancelAll(baseUrl, state.open);
		return { state, leftover, usage, drained };
	};

	if (warmup > 0) await run(warmup);
	return guarded(async () => summarisePairs(showIDs, connections, await run(duration)));
}

function summarisePairs(showIDs, connections, { state, leftover, usage, drained }) {
	const seconds = Number(state.endedAt - state.startedAt) / 1e9;
	const latencies = Float64Array.from(state.latencies).sort();
	const pairMs = Float64Array.from(state.pairMs).sort();
	let ok = 0;
	let non2xx = 0;
	for (const [code, n] of Object.entries(state.statusCodes))
		if (code.startsWith("2")) ok += n;
		else non2xx += n;
	const pairsPerSec = round(state.pairsOk / seconds);
	return {
		workload: "pairs",
		shows: showIDs.length,
		connections,
		durationS: round(seconds, 2),
		requests: ok + non2xx,
		ok2xx: ok,
		reqPerSec: round(ok / seconds),
		p50Ms: round(percentile(latencies, 50), 2),
		p99Ms: round(percentile(latencies, 99), 2),
		maxMs: round(latencies[latencies.length - 1], 2),
		non2xx,
		errors: state.errors,
		timeouts: state.timeouts,
		statusCodes: state.statusCodes,
		/** Pairs still unfinished when the measured time was up (they finished in the drain). */
		unanswered: state.inFlightAtEnd,
		pairs: state.pairsOk,
		pairsPerSec,
		throughput: pairsPerSec,
		pairP50Ms: round(percentile(pairMs, 50), 2),
		pairP99Ms: round(percentile(pairMs, 99), 2),
		pairsEachSecond: Array.from(state.perSecond.slice(0, Math.floor(seconds)), n => n ?? 0),
		checkoutFailed: state.checkoutFailed,
		cancelFailed: state.cancelFailed,
		drained,
		leftoverCanceled: leftover.canceled,
		leftoverFailed: leftover.failed,
		...usage
	};
}

async function cancelAll(baseUrl, ids) {
	let canceled = 0;
	let failed = 0;
	for (const id of ids) {
		try {
			const res = await fetch(`${baseUrl}/reservations/${id}`, {
				method: "DELETE",
				signal: AbortSignal.timeout(30000)
			});
			await res.arrayBuffer();
			if (res.ok) canceled++;
			else failed++;
		} catch {
			failed++;
		}
	}
	return { canceled, failed };
}

/** Seats of a show still taken after a run (checkouts in flight when a run stopped). */
async function reservedSeats(baseUrl, showID = ROCK) {
	try {
		const res = await fetch(`${baseUrl}/shows/${showID}`, {
			signal: AbortSignal.timeout(30000)
		});
		return res.ok ? (await res.json()).reserved : null;
	} catch {
		return null;
	}
}

module.exports = { reads, pairs, reservedSeats, setIdleGuard, waitIdle, ROCK, round };
