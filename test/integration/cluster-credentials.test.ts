/**
 * The cluster admits only nodes with credentials: a real nats-server with an `authorization`
 * block, real processes through moleculer-runner. A node with the user and password (in
 * TRANSPORTER or in NATS_USER/NATS_PASSWORD) joins and serves; one without, or with a wrong
 * password, never joins and can call nothing. The password never appears in any output.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { connect } from "nats";
import { freePort, startNats } from "../../scripts/servers";
import { systemNode, waitForHealthy, type NodeHandle } from "../support/system";

const USER = "tickets";
const PASSWORD = `pw-${crypto.randomBytes(12).toString("hex")}`;

let nats: Awaited<ReturnType<typeof startNats>>;
const nodes: NodeHandle[] = [];
let baseEnv: Record<string, string>;

async function startNode(services: string, env: Record<string, string>) {
	const port = await freePort();
	const node = systemNode({ services, env: { PORT: String(port), ...env } }, baseEnv);
	await node.start();
	nodes.push(node);
	return { node, baseUrl: `http://127.0.0.1:${port}` };
}

beforeAll(async () => {
	nats = await startNats({ auth: { user: USER, password: PASSWORD } });
	baseEnv = {
		NAMESPACE: `creds-${crypto.randomBytes(4).toString("hex")}`,
		DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "tickets-")),
		RATE_LIMIT: "0",
		LOG_LEVEL: "debug"
	};
});

afterAll(async () => {
	await Promise.all(nodes.map(n => n.stop()));
	await nats?.stop();
});

it("nodes with the credentials (named variables, or in the URL) join and serve checkouts", async () => {
	const stores = await startNode("shows,reservations", {
		TRANSPORTER: nats.url,
		NATS_USER: USER,
		NATS_PASSWORD: PASSWORD
	});
	const withUrl = nats.url.replace("nats://", `nats://${USER}:${PASSWORD}@`);
	const gateway = await startNode("api", { TRANSPORTER: withUrl });
	await waitForHealthy(gateway.baseUrl, gateway.node, 60000);
	const res = await fetch(`${gateway.baseUrl}/reserve`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ showID: "5b805a570cee1505a52bc75d", name: "Ann", count: 1 })
	});
	expect(res.status).toBe(201);
	for (const { node } of [stores, gateway]) expect(node.output()).not.toContain(PASSWORD);
});

it.each([
	["no credentials", {}],
	["a wrong password", { NATS_USER: USER, NATS_PASSWORD: "guessed" }],
	["a token instead", { NATS_TOKEN: PASSWORD }]
])("a node with %s never joins: its gateway never serves", async (_what, creds) => {
	const intruder = await startNode("api", { TRANSPORTER: nats.url, ...creds });
	await expect(waitForHealthy(intruder.baseUrl, undefined, 6000)).rejects.toThrow(/not healthy/);
	expect(intruder.node.output()).toMatch(/authorization/i);
	expect(intruder.node.output()).not.toContain(PASSWORD);
});

it("a raw NATS client without credentials is refused, so it cannot call any action", async () => {
	await expect(
		connect({ servers: nats.url, reconnect: false, timeout: 5000 })
	).rejects.toMatchObject({ code: expect.stringMatching(/AUTHORIZATION/) });
	const admitted = await connect({ servers: nats.url, user: USER, pass: PASSWORD });
	await admitted.close();
});
