/**
 * Fault injection on the real cluster (nats-server, FerretDB, separate service processes) while
 * checkouts run: SIGKILL of a shows and a reservations process, a nats-server restart, and the
 * reservation step failing after the hold. After each, once things settle:
 *  - every 2xx booking exists, confirmed;
 *  - each show's counted seats equal the seats of its confirmed reservations plus its live holds;
 *  - no answer was a 5xx other than 503, and none hung;
 *  - the system serves checkouts again.
 */
import type { ServiceBroker } from "moleculer";
import { openStores, operatorNode } from "../support/probe";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const HOLD_TTL_S = 3;
const CLIENT_TIMEOUT_MS = 30000;
const CONCURRENCY = 16;

let cluster: Cluster;
let operator: ServiceBroker;
let showIds: string[] = [];
const node: Record<string, NodeHandle> = {};

interface Answer {
	status: number;
	body: any;
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

async function reserve(showID: string, count: number): Promise<Answer> {
	try {
		const res = await fetch(`${cluster.baseUrl}/reserve`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "Load", count, showID }),
			signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS)
		});
		return { status: res.status, body: await res.json() };
	} catch (err) {
		// A hang or a dropped connection: the invariants below count it as a failure.
		return { status: 0, body: String(err) };
	}
}

/**
 * Runs checkouts from CONCURRENCY clients while `fault` runs, then returns every answer. The fault
 * starts once the load books, so that there are bookings made before it to check afterwards.
 */
async function loadDuring(fault: () => Promise<void>): Promise<Answer[]> {
	const answers: Answer[] = [];
	let running = true;
	const clients = Array.from({ length: CONCURRENCY }, async (_, c) => {
		for (let i = 0; running; i++) {
			const showID = showIds[(c + i) % showIds.length];
			answers.push(await reserve(showID, 1 + (i % 3)));
		}
	});
	try {
		const deadline = Date.now() + 20000;
		while (!answers.some(a => a.status === 201) && Date.now() < deadline) await sleep(50);
		await fault();
	} finally {
		running = false;
		await Promise.all(clients);
	}
	return answers;
}

/** Waits until no checkout is pending and no hold is unconfirmed: everything has settled. */
async function settle() {
	const stores = await openStores(cluster);
	try {
		const deadline = Date.now() + (HOLD_TTL_S + 30) * 1000;
		for (;;) {
			const pending = await stores.openCheckouts.countDocuments({});
			const unreleased = await stores.seatReleases.countDocuments({});
			const shows = await stores.shows.find({ nextExpiry: { $ne: null } }).toArray();
			if (pending === 0 && unreleased === 0 && shows.length === 0) return;
			if (Date.now() > deadline)
				throw new Error(
					`not settled: ${pending} pending, ${unreleased} unreleased, ${shows.length} shows with holds`
				);
			await sleep(500);
		}
	} finally {
		await stores.close();
	}
}

async function expectInvariants(answers: Answer[]) {
	const statuses = new Map<string | number, number>();
	for (const a of answers) {
		const key = a.status === 201 ? 201 : `${a.status} ${a.body?.type ?? a.body}`;
		statuses.set(key, (statuses.get(key) ?? 0) + 1);
	}
	const summary = [...statuses].map(([s, n]) => `${s}: ${n}`).join(", ");
	console.log(`answers — ${summary}`);

	for (const a of answers) expect([201, 409, 503]).toContain(a.status);
	const booked = answers.filter(a => a.status === 201).map(a => a.body._id as string);
	expect(booked.length).toBeGreaterThan(0);

	const stores = await openStores(cluster);
	try {
		const all = await stores.reservationsWithStatus();
		const confirmed = all.filter(r => r.status === "confirmed");
		const confirmedIds = new Set(confirmed.map(r => r._id as string));
		for (const id of booked) expect(confirmedIds.has(id)).toBe(true);
		expect(all.filter(r => r.status === "pending")).toHaveLength(0);

		for (const showID of showIds) {
			const { show, liveHolds, soldIds, soldSeats } = await stores.seatsOf(showID);
			const sold = confirmed.filter(r => r.showID === showID);
			const seats = sold.reduce((sum: number, r: any) => sum + r.guests, 0);
			const held = liveHolds.reduce((sum: number, h: any) => sum + h.count, 0);
			expect(show.reserved - show.presold).toBe(seats + held);
			expect(soldSeats).toBe(seats);
			expect(show.reserved).toBeLessThanOrEqual(show.houseSize);
			expect(soldIds).toEqual(new Set(sold.map(r => r._id)));
		}
	} finally {
		await stores.close();
	}

	// Serving again, as a client that honours Retry-After sees it (a circuit breaker that opened
	// during the fault closes after its half-open wait).
	await waitForHealthy(cluster.baseUrl, undefined, 30000);
	let again = await reserve(showIds[0], 1);
	for (let tries = 0; again.status === 503 && tries < 15; tries++) {
		await sleep(Number(again.body?.retryAfter ?? 2) * 1000);
		again = await reserve(showIds[0], 1);
	}
	expect(again.status).toBe(201);
}

beforeAll(async () => {
	cluster = await startCluster({
		env: {
			HOLD_TTL: String(HOLD_TTL_S),
			SWEEP_INTERVAL_MS: "500",
			RECONCILE_GRACE_MS: "1000",
			REQUEST_TIMEOUT_MS: "3000",
			CHECKOUT_TIMEOUT_MS: "6000"
		}
	});
	// Stable node ids, as an operator runs them: a restarted node takes its old place.
	for (const name of ["shows1", "shows2", "reservations1", "reservations2"])
		node[name] = await cluster.add({
			services: name.replace(/\d$/, ""),
			env: { NODE_ID: name }
		});
	node.api = await cluster.add({ services: "api", instances: 2, env: { NODE_ID: "api" } });
	await waitForHealthy(cluster.baseUrl, node.api, 60000);
	operator = await operatorNode(cluster);
}, 120000);

/** Each fault gets shows of its own, large enough not to sell out under the load. */
beforeEach(async () => {
	const created = (await Promise.all(
		Array.from({ length: 6 }, (_, i) =>
			operator.call("shows.create", { name: `Fault show ${i}`, houseSize: 1000 })
		)
	)) as { _id: string }[];
	showIds = created.map(s => s._id);
});

afterAll(async () => {
	await operator?.stop();
	await cluster?.stop();
});

it("converges after SIGKILL of a shows and a reservations process under load", async () => {
	const answers = await loadDuring(async () => {
		await sleep(1000);
		await Promise.all([node.shows1.stop("SIGKILL"), node.reservations1.stop("SIGKILL")]);
		await sleep(2500);
		await Promise.all([node.shows1.start(), node.reservations1.start()]);
		await sleep(2000);
	});
	await settle();
	await expectInvariants(answers);
}, 120000);

it("converges after nats-server restarts under load", async () => {
	if (!cluster.nats) return expect(process.env.TEST_NATS_URL).toBeDefined();
	const answers = await loadDuring(async () => {
		await sleep(1000);
		await cluster.nats!.restart();
		await sleep(4000);
	});
	await settle();
	await expectInvariants(answers);
}, 120000);

it("releases the held seats when the reservation step fails after the hold", async () => {
	const answers = await loadDuring(async () => {
		await sleep(800);
		// A clean outage: every reservations node leaves, so each checkout holds, then fails.
		await Promise.all([node.reservations1.stop(), node.reservations2.stop()]);
		await sleep(2500);
		await Promise.all([node.reservations1.start(), node.reservations2.start()]);
		await sleep(1500);
	});
	expect(answers.filter(a => a.status === 503).length).toBeGreaterThan(0);
	await settle();
	await expectInvariants(answers);
}, 120000);
