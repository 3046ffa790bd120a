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
import { checkoutLoad, sleep } from "../support/checkout-load";
import { operatorNode } from "../support/probe";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const HOLD_TTL_S = 3;

let cluster: Cluster;
let load: ReturnType<typeof checkoutLoad>;
let operator: ServiceBroker;
let showIds: string[] = [];
const node: Record<string, NodeHandle> = {};

const loadDuring = (fault: () => Promise<void>) => load.loadDuring(showIds, fault);
const settle = () => load.settle();
const expectInvariants = (answers: Awaited<ReturnType<typeof loadDuring>>) =>
	load.expectInvariants(answers, showIds);

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
	load = checkoutLoad(cluster, { holdTtlS: HOLD_TTL_S });
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
