/**
 * Faults between hosts, made with a real fault proxy (toxiproxy) on the real cluster: every node's
 * link to NATS and to the store runs through a proxy of its own, which the tests cut (a partition:
 * connections close, new ones are refused), stall (bytes stop, connections stay open) or slow
 * down, while checkouts run. Each ends with the invariants of the fault tests
 * (test/support/checkout-load.ts). One more freezes the gateway's processes (SIGSTOP), as a long
 * pause of a host does, until the other nodes give it up.
 */
import { ObjectId } from "mongodb";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import type { ServiceBroker } from "moleculer";
import { checkoutLoad, sleep, type CheckoutAnswer } from "../support/checkout-load";
import { counterOnNode, openStores, operatorNode } from "../support/probe";
import { freePort } from "../../scripts/servers";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const HOLD_TTL_S = 8;
const REQUEST_TIMEOUT_MS = 3000;
const CHECKOUT_TIMEOUT_MS = 6000;
/** moleculer.config.ts: a node silent this long is dropped and its shows move. */
const HEARTBEAT_TIMEOUT_MS = 8000;
const NODES = ["shows1", "shows2", "reservations1", "reservations2", "api"];

let cluster: Cluster;
let load: ReturnType<typeof checkoutLoad>;
let operator: ServiceBroker;
let showIds: string[] = [];
let shows1MetricsPort: number;
const node: Record<string, NodeHandle> = {};

beforeAll(async () => {
	cluster = await startCluster({
		proxies: true,
		env: {
			HOLD_TTL: String(HOLD_TTL_S),
			SWEEP_INTERVAL_MS: "500",
			RECONCILE_GRACE_MS: "1000",
			REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
			CHECKOUT_TIMEOUT_MS: String(CHECKOUT_TIMEOUT_MS)
		}
	});
	shows1MetricsPort = await freePort();
	for (const name of NODES.slice(0, 4))
		node[name] = await cluster.add({
			services: name.replace(/\d$/, ""),
			proxied: true,
			env: {
				NODE_ID: name,
				...(name === "shows1" ? { METRICS_PORT: String(shows1MetricsPort) } : {})
			}
		});
	node.api = await cluster.add({
		services: "api",
		instances: 2,
		proxied: true,
		// Its list is trusted all the while: only events and resyncs keep it true.
		env: { NODE_ID: "api", SHOWS_CACHE_TTL_MS: "3600000" }
	});
	await waitForHealthy(cluster.baseUrl, node.api, 60000);
	operator = await operatorNode(cluster);
	load = checkoutLoad(cluster, { holdTtlS: HOLD_TTL_S, concurrency: 12 });
}, 120000);

/** Each fault gets shows of its own, large enough not to sell out under the load. */
beforeEach(async () => {
	const created = (await Promise.all(
		Array.from({ length: 6 }, (_, i) =>
			operator.call("shows.create", { name: `Partition show ${i}`, houseSize: 2000 })
		)
	)) as { _id: string }[];
	showIds = created.map(s => s._id);
});

afterEach(async () => {
	// A failed test leaves no fault behind for the next one.
	await Promise.all(
		NODES.flatMap(n => [cluster.link(n, "nats").heal(), cluster.link(n, "store").heal()])
	);
});

afterAll(async () => {
	await operator?.stop();
	await cluster?.stop();
});

it("moves a shows node's shows when it is cut from NATS but not the store, and takes it back", async () => {
	const link = cluster.link("shows1", "nats");
	const seatCounters = () =>
		Promise.all(
			["tickets_seats_held_total", "tickets_seats_released_total"].map(metric =>
				counterOnNode(shows1MetricsPort, metric, "")
			)
		);
	let cutAt = 0;
	let healedAt = 0;
	const whileAway: number[][] = [];
	const soldWhileAway: CheckoutAnswer[] = [];
	const answers = await load.loadDuring(showIds, async () => {
		await sleep(1000);
		cutAt = Date.now();
		await link.cut();
		await sleep(HEARTBEAT_TIMEOUT_MS + 1000);
		whileAway.push(await seatCounters());
		// Every show sells while shows1 is still cut off, as a client honouring Retry-After sees it.
		for (const showID of showIds) {
			let answer = await load.reserve(showID, 1);
			for (let tries = 0; answer.status === 503 && tries < 5; tries++) {
				await sleep(Number(answer.retryAfter) * 1000);
				answer = await load.reserve(showID, 1);
			}
			soldWhileAway.push(answer);
		}
		whileAway.push(await seatCounters());
		await link.heal();
		healedAt = Date.now();
		await sleep(6000);
	});
	const refused = answers.filter(a => a.status === 503);
	const after = (a: CheckoutAnswer) => a.sentAt + a.ms - cutAt;
	console.log(
		`503s: ${refused.length}, answered ${Math.min(...refused.map(after))}..` +
			`${Math.max(...refused.map(after))} ms after the cut; healed ${healedAt - cutAt} ms after it`
	);
	await load.settle();
	await load.expectInvariants(answers, showIds);

	// Its shows moved: once the others gave shows1 up, every show sold again while it was away.
	expect(soldWhileAway.map(a => a.status)).toEqual(showIds.map(() => 201));
	// Nothing written by shows1 once its shows had moved: no hold taken or released there. (Its
	// hold sweeper may still drop expired holds; those writes carry the version check.)
	expect(whileAway[1]).toEqual(whileAway[0]);

	// Nothing stale: the gateway's show list agrees with the store on every show.
	const stores = await openStores(cluster);
	try {
		const list = (await (await fetch(`${cluster.baseUrl}/`)).json()) as any[];
		for (const showID of showIds) {
			const stored = await stores.shows.findOne({ _id: new ObjectId(showID) });
			const listed = list.find(s => s._id === showID);
			expect({ showID, reserved: listed?.reserved }).toEqual({
				showID,
				reserved: stored?.reserved ?? listed?.reserved
			});
		}
	} finally {
		await stores.close();
	}

	// It rejoined: seen by the others again, and holding seats for the shows it owns again.
	expect(operator.registry.nodes.get("shows1")?.available).toBe(true);
	const heldBefore = await counterOnNode(shows1MetricsPort, "tickets_seats_held_total", "");
	// 16 new shows: the chance that none of them is shows1's is 2^-16.
	const fresh = (await Promise.all(
		Array.from({ length: 16 }, (_, i) =>
			operator.call("shows.create", { name: `Rejoin show ${i}`, houseSize: 10 })
		)
	)) as { _id: string }[];
	const booked = await Promise.all(fresh.map(show => load.reserve(show._id, 1)));
	expect(booked.map(a => a.status)).toEqual(fresh.map(() => 201));
	expect(await counterOnNode(shows1MetricsPort, "tickets_seats_held_total", "")).toBeGreaterThan(
		heldBefore
	);
}, 150000);

it("answers 503 with Retry-After while a reservations node is cut from the store, then settles", async () => {
	const link = cluster.link("reservations1", "store");
	const answers = await load.loadDuring(showIds, async () => {
		await sleep(1000);
		await link.cut();
		await sleep(8000);
		await link.heal();
		await sleep(3000);
	});
	const refused = answers.filter(a => a.status === 503);
	console.log(
		`503s: ${refused.length}, slowest answer ${Math.max(...answers.map(a => a.ms))} ms`
	);
	expect(refused.length).toBeGreaterThan(0);
	for (const a of refused) expect(Number(a.retryAfter)).toBeGreaterThan(0);
	await load.settle();
	await load.expectInvariants(answers, showIds);
}, 150000);

it("answers within the checkout timeout while links to NATS and to the store are stalled", async () => {
	const stalled = [cluster.link("shows2", "nats"), cluster.link("reservations2", "store")];
	const answers = await load.loadDuring(showIds, async () => {
		await sleep(1000);
		await Promise.all(stalled.map(link => link.stall()));
		await sleep(HEARTBEAT_TIMEOUT_MS + 4000);
		await Promise.all(stalled.map(link => link.heal()));
		await sleep(4000);
	});
	const slowest = Math.max(...answers.map(a => a.ms));
	console.log(`slowest answer ${slowest} ms`);
	// The stall was felt (some step waited out its timeout), and no answer hung past the budget.
	expect(slowest).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS);
	for (const a of answers) expect(a.status).not.toBe(0);
	for (const a of answers) expect(a.ms).toBeLessThan(CHECKOUT_TIMEOUT_MS + 2000);
	await load.settle();
	await load.expectInvariants(answers, showIds);
}, 150000);

it("stays correct with 5 ms each way on every link", async () => {
	const links = NODES.flatMap(n => [cluster.link(n, "nats"), cluster.link(n, "store")]);
	await Promise.all(links.map(link => link.latency(5)));
	const answers = await load.loadDuring(showIds, async () => void (await sleep(8000)));
	const median = answers.map(a => a.ms).sort((a, b) => a - b)[answers.length >> 1];
	console.log(`median answer ${median} ms, ${load.summarize(answers)}`);
	// The delay was really there: each booking waited for at least its 4 broker round trips
	// (api -> NATS -> service and back: 4 hops of 5 ms each).
	for (const a of answers.filter(a => a.status === 201)) expect(a.ms).toBeGreaterThanOrEqual(80);
	await Promise.all(links.map(link => link.heal()));
	await load.settle();
	await load.expectInvariants(answers, showIds);
}, 150000);

/** A process and every process under it (the gateway's cluster workers). */
function processTree(pid: number): number[] {
	const children = fs
		.readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
		.split(" ")
		.filter(Boolean)
		.map(Number);
	return [pid, ...children.flatMap(processTree)];
}

it("shows, once a frozen gateway is back, what changed after the others gave it up", async () => {
	const [showID] = showIds;
	const listed = async () =>
		((await (await fetch(`${cluster.baseUrl}/`)).json()) as any[]).find(s => s._id === showID);
	expect(await listed()).toMatchObject({ houseSize: 2000 });
	const gateway = processTree(node.api.pid!);
	const apiNodes = [...operator.registry.nodes.list({})]
		.filter((n: any) => n.id.startsWith("api"))
		.map((n: any) => n.id as string);
	expect(apiNodes.length).toBeGreaterThan(0);
	const available = () => apiNodes.map(id => operator.registry.nodes.get(id)?.available);
	for (const pid of gateway) process.kill(pid, "SIGSTOP");
	try {
		for (const until = Date.now() + 4 * HEARTBEAT_TIMEOUT_MS; Date.now() < until;) {
			if (available().every(a => !a)) break;
			await sleep(500);
		}
		expect(available().every(a => !a)).toBe(true);
		// Written while the shows nodes send the gateway nothing.
		await operator.call("shows.resize", { showID, houseSize: 2500 });
	} finally {
		for (const pid of gateway) process.kill(pid, "SIGCONT");
	}
	let shown: any;
	for (const until = Date.now() + 30000; Date.now() < until;) {
		shown = await listed().catch(() => undefined);
		if (shown?.houseSize === 2500) break;
		await sleep(250);
	}
	expect(shown).toMatchObject({ houseSize: 2500, available: 2500 - shown.reserved });
}, 150000);

it("shows, once a shows node's link to NATS is back, the holds it let expire while it was cut off", async () => {
	const listed = async () => {
		const list = (await (await fetch(`${cluster.baseUrl}/?limit=1000`)).json()) as any[];
		return showIds.map(id => list.find(s => s._id === id)?.reserved);
	};
	const until = async (want: number, ms: number) => {
		let seen = await listed();
		for (const end = Date.now() + ms; Date.now() < end && seen.some(r => r !== want);) {
			await sleep(250);
			seen = await listed();
		}
		return seen;
	};
	// A hold on every show that nobody confirms, running out 2 s from now (its checkout's
	// deadline in 1 s, plus CLOCK_SKEW_MS).
	const deadline = Date.now() + 1000;
	await Promise.all(
		showIds.map(showID =>
			operator.call(
				"shows.holdSeats",
				{ showID, holdId: randomUUID(), count: 5 },
				{ meta: { deadline } }
			)
		)
	);
	expect(await until(5, 10000)).toEqual(showIds.map(() => 5));
	// Cut off for less than the heartbeat timeout: nobody gives shows1 up, and its sweeper lets the
	// holds of its own shows expire while no event of it gets out.
	const link = cluster.link("shows1", "nats");
	await link.cut();
	await sleep(4500);
	await link.heal();
	expect(await until(0, 30000)).toEqual(showIds.map(() => 0));
}, 150000);

it("shows, once a gateway's link to NATS is back, what changed while it was cut off", async () => {
	const [showID] = showIds;
	const houseSize = async () =>
		((await (await fetch(`${cluster.baseUrl}/shows/${showID}`)).json()) as any).houseSize;
	expect(await houseSize()).toBe(2000);
	// Cut off for less than the heartbeat timeout: nobody gives the gateway up, and the change's
	// event to it is lost.
	const link = cluster.link("api", "nats");
	await link.cut();
	await sleep(1000);
	await operator.call("shows.resize", { showID, houseSize: 2400 });
	await sleep(2000);
	await link.heal();
	let seen = await houseSize();
	for (const end = Date.now() + 30000; Date.now() < end && seen !== 2400;) {
		await sleep(250);
		seen = await houseSize();
	}
	expect(seen).toBe(2400);
}, 150000);
