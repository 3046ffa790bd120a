/**
 * A rolling upgrade under load, for real: a cluster of the previous release (test/support/
 * previous-release.ts, checked out with `git worktree` and built) on nats-server and FerretDB takes
 * checkouts and cancels through two api nodes, and each of its nodes is replaced, one at a time, by
 * this release in the order docs/operations.md ("Upgrading") gives operators: shows, reservations,
 * api. Through it and after it the fault invariants hold (test/support/checkout-load.ts): nothing
 * oversold, no booking lost or doubled, no 5xx but 503s with Retry-After. Every release keeps this
 * test, run against its predecessor.
 */
import type { Context, ServiceBroker } from "moleculer";
import { checkoutLoad, sleep } from "../support/checkout-load";
import { gatewayPool } from "../support/gateway-pool";
import { openStores, operatorNode } from "../support/probe";
import { checkoutPreviousRelease, type PreviousRelease } from "../support/previous-release";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";
import { freePort } from "../../scripts/servers";
import { SCHEMA_VERSION } from "../../lib/common/schema-version";

const HOLD_TTL_S = 3;
/** The order of docs/operations.md: the called before their callers. */
const UPGRADE_ORDER = ["shows1", "shows2", "reservations1", "reservations2", "api1", "api2"];
/** How long each mixed cluster takes load before the next node is replaced. */
const MIXED_FOR_MS = 1500;

/** Each `shows.changed` event the operator node heard: who sent it, when, and its meta's version. */
const seatEvents: { nodeID: string; at: number; schemaVersion: unknown }[] = [];

let previous: PreviousRelease | undefined;
let cluster: Cluster;
let operator: ServiceBroker;
const node: Record<string, NodeHandle> = {};
const gatewayUrl: Record<string, string> = {};

const serviceOf = (name: string) => name.replace(/\d$/, "");

function nodeEnv(name: string): Record<string, string> {
	// Stable node ids, as an operator runs them: the new node takes the old one's place.
	return { NODE_ID: name, ...(gatewayUrl[name] ? { PORT: new URL(gatewayUrl[name]).port } : {}) };
}

beforeAll(async () => {
	previous = await checkoutPreviousRelease();
	cluster = await startCluster({
		env: {
			HOLD_TTL: String(HOLD_TTL_S),
			SWEEP_INTERVAL_MS: "500",
			RECONCILE_GRACE_MS: "1000",
			REQUEST_TIMEOUT_MS: "3000",
			CHECKOUT_TIMEOUT_MS: "6000"
		}
	});
	for (const name of ["api1", "api2"]) gatewayUrl[name] = `http://127.0.0.1:${await freePort()}`;
	for (const name of UPGRADE_ORDER)
		node[name] = await cluster.add({
			services: serviceOf(name),
			root: previous.root,
			env: nodeEnv(name)
		});
	for (const name of ["api1", "api2"]) await waitForHealthy(gatewayUrl[name], node[name], 90000);
	operator = await operatorNode(cluster);
	operator.createService({
		name: "upgrade-probe",
		events: {
			"shows.changed"(ctx: Context<unknown, { schemaVersion?: unknown }>) {
				const { nodeID, meta } = ctx;
				seatEvents.push({
					nodeID: nodeID!,
					at: Date.now(),
					schemaVersion: meta.schemaVersion
				});
			}
		}
	});
	// The shows nodes broadcast only to the nodes they know to listen.
	for (const name of ["shows1", "shows2"])
		await waitUntil(`${name} knows the probe`, async () => {
			const events = await operator.call<EventListing[], object>(
				"$node.events",
				{ withEndpoints: true },
				{ nodeID: name }
			);
			return events.some(
				e =>
					e.name === "shows.changed" &&
					e.group === "upgrade-probe" &&
					e.endpoints?.some(ep => ep.nodeID === operator.nodeID)
			);
		});
}, 240000);

afterAll(async () => {
	await operator?.stop();
	await cluster?.stop();
	await previous?.remove();
}, 60000);

/** What `$node.events` lists. */
interface EventListing {
	name: string;
	group: string;
	endpoints?: { nodeID: string }[];
}

async function waitUntil(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 60000) {
	const deadline = Date.now() + timeoutMs;
	while (!(await done())) {
		if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
		await sleep(200);
	}
}

/** Until `name` is in the registry with its service, as another node sees it. */
async function waitUntilJoined(name: string): Promise<void> {
	await waitUntil(`${name} joins`, () =>
		operator.registry
			.getNodeList({ onlyAvailable: true, withServices: true })
			.some(n => n.id === name && n.services.some(s => s.name === serviceOf(name)))
	).catch(err => {
		throw new Error(`${(err as Error).message}\n${node[name].output()}`);
	});
}

it("replaces every node of the previous release under checkout load, one at a time, with nothing oversold, lost or doubled", async () => {
	const created = (await Promise.all(
		// Three houses the load does not fill, and one it sells out during the upgrade.
		[1000, 1000, 1000, 40].map((houseSize, i) =>
			operator.call("shows.create", { name: `Upgrade show ${i}`, houseSize })
		)
	)) as { _id: string }[];
	const showIds = created.map(s => s._id);
	const gateways = gatewayPool(Object.values(gatewayUrl));
	const load = checkoutLoad(cluster, {
		holdTtlS: HOLD_TTL_S,
		concurrency: 8,
		gateways,
		cancelEvery: 4,
		keyed: true
	});

	let upgradeStarted = 0;
	/** When each node's replacement began, in order. */
	const steps: { name: string; at: number }[] = [];
	const answers = await load.loadDuring(showIds, async () => {
		upgradeStarted = Date.now();
		for (const name of UPGRADE_ORDER) {
			steps.push({ name, at: Date.now() });
			const url = gatewayUrl[name];
			// As a load balancer does: no new requests to it, and those under way are answered.
			if (url) await gateways.drain(url);
			await node[name].stop("SIGTERM");
			node[name] = await cluster.add({ services: serviceOf(name), env: nodeEnv(name) });
			await waitUntilJoined(name);
			if (url) {
				await waitForHealthy(url, node[name], 60000);
				gateways.restore(url);
			}
			await sleep(MIXED_FOR_MS);
		}
	});
	const upgradeAnswers = answers.filter(a => a.sentAt >= upgradeStarted);
	const upgradeDone = Date.now();
	console.log(
		`rolling upgrade ${previous!.ref} → this release, requests answered during it — ` +
			load.summarize(upgradeAnswers) +
			steps
				.map(({ name, at }, i) => {
					const until = steps[i + 1]?.at ?? upgradeDone;
					const sent = upgradeAnswers.filter(a => a.sentAt >= at && a.sentAt < until);
					return `\n  while ${name} was replaced: ${load.summarize(sent)}`;
				})
				.join("")
	);
	expect(upgradeAnswers.filter(a => a.status === 201).length).toBeGreaterThan(0);

	await load.settle();
	await load.expectInvariants(answers, showIds);

	// Seat events said nothing of a version before the upgrade, and say this release's after it.
	const fromShows = seatEvents.filter(e => e.nodeID.startsWith("shows"));
	const before = fromShows.filter(e => e.at < upgradeStarted);
	const after = fromShows.filter(e => e.at > upgradeDone);
	expect(before.length).toBeGreaterThan(0);
	expect(before.every(e => e.schemaVersion === undefined)).toBe(true);
	expect(after.length).toBeGreaterThan(0);
	expect(after.every(e => e.schemaVersion === SCHEMA_VERSION)).toBe(true);

	// A booking made by the previous release reads through this one.
	const first = answers.find(a => a.status === 201 && a.sentAt < upgradeStarted)!;
	const read = await fetch(`${gateways.pick()}/reservations/${first.body._id}`);
	expect(read.status).toBe(200);
	expect(((await read.json()) as { _id: string })._id).toBe(first.body._id);

	// A show that sold out before its nodes were replaced has not been written since: one cancel
	// of one of its bookings writes each booked show through this release.
	const canceled = new Set(answers.filter(a => a.kind === "cancel").map(a => a.reservationId));
	const booked = showIds.flatMap(showID => {
		const booking = answers.find(
			a => a.status === 201 && a.body?.showID === showID && !canceled.has(a.body._id)
		);
		return booking ? [{ showID, id: booking.body._id as string }] : [];
	});
	expect(booked.length).toBeGreaterThan(0);
	for (const { id } of booked) {
		const cancel = await fetch(`${gateways.pick()}/reservations/${id}`, { method: "DELETE" });
		expect(cancel.status).toBe(200);
	}

	const stores = await openStores(cluster);
	try {
		// Every show written since is written by this release, which says so.
		for (const { showID } of booked) {
			const { show } = await stores.seatsOf(showID);
			expect(show.schemaVersion).toBe(SCHEMA_VERSION);
		}
		// That booking carries no version (its release knows none) ...
		const oldBooking = await stores.reservations.findOne({ _id: first.body._id });
		expect(oldBooking).not.toHaveProperty("schemaVersion");
		// ... and those this release wrote carry its own.
		expect(
			await stores.reservations.countDocuments({ schemaVersion: SCHEMA_VERSION })
		).toBeGreaterThan(0);
	} finally {
		await stores.close();
	}
}, 300000);
