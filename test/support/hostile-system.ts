/**
 * The system that test/integration/hostile-clients.test.ts attacks, once per configuration that the
 * README documents as changing the HTTP path, and what its cases share: requests as they come, the
 * state that must not change, and what a clean JSON error is.
 */
import fs from "node:fs";
import path from "node:path";
import { httpCall, jsonBody } from "./http";
import { rawRequest } from "./raw-http";
import { startCluster, startEmbedded, waitForHealthy, type NodeHandle } from "./system";

export const ROCK = "5b805a00297ae6047030f2e0";
export const PLAY = "5b805a570cee1505a52bc75d";
export const ALLOWED_ORIGIN = "https://box-office.example";
export const BODY_TIMEOUT_MS = 1000;

export interface HostileConfig {
	name: string;
	env: Record<string, string>;
	/** The gateway in a process of its own, joined to the stores' process over NATS. */
	cluster?: boolean;
}

/** Each documented configuration that changes the HTTP path (the README's table). */
export const HOSTILE_CONFIGS: HostileConfig[] = [
	{ name: "defaults", env: {} },
	{ name: "CORS_ORIGINS set", env: { CORS_ORIGINS: ALLOWED_ORIGIN } },
	{ name: "TRUST_PROXY set", env: { TRUST_PROXY: "1" } },
	// The README's default: far more than the cases' checkouts within a minute.
	{ name: "RATE_LIMIT on", env: { RATE_LIMIT: "120" } },
	{ name: "a cluster gateway on NATS", env: {}, cluster: true }
];

const SYSTEM_ENV = {
	BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
	SHOWS_CACHE_TTL_MS: "0",
	// Housekeeping removals (finished to-do entries) come this long after a booking: well
	// within the quiet time that `state` waits for.
	STORE_CLEANUP_DELAY_MS: "100",
	LOG_LEVEL: "info"
};

export interface HostileSystem {
	baseUrl: string;
	port: number;
	dataDir: string;
	/** What the gateway's process has written (its access log among it). */
	gatewayOutput(): string;
	/** True while every process of the system runs. */
	alive(): boolean;
	stop(): Promise<void>;
}

/** Whether each node has exited, as it happens. */
function watchExits(nodes: NodeHandle[]): () => boolean {
	const exited = new Set<NodeHandle>();
	for (const node of nodes) void node.exited().then(() => exited.add(node));
	return () => exited.size === 0;
}

async function startHostileSystem(config: HostileConfig): Promise<HostileSystem> {
	const env = { ...SYSTEM_ENV, ...config.env };
	if (!config.cluster) {
		const system = await startEmbedded(env);
		return {
			...system,
			gatewayOutput: () => system.node.output(),
			alive: watchExits([system.node]),
			stop: () => system.node.stop()
		};
	}
	const cluster = await startCluster({ mongo: false, env });
	const stores = await cluster.add({ services: "shows,reservations" });
	const gateway = await cluster.add({ services: "api" });
	await waitForHealthy(cluster.baseUrl, gateway, 60000).catch(err => {
		console.log(stores.output().slice(-2500));
		throw err;
	});
	return {
		baseUrl: cluster.baseUrl,
		port: cluster.port,
		dataDir: cluster.env.DATA_DIR,
		gatewayOutput: () => gateway.output(),
		alive: watchExits([stores, gateway]),
		stop: () => cluster.stop()
	};
}

export interface Hostile {
	readonly config: HostileConfig;
	readonly system: HostileSystem;
	/** The gateway's node id, which no answer may carry. */
	readonly nodeID: string;
	/** A booking the hostile requests must leave alone. */
	readonly booking: { _id: string };
	/** The state before each case. */
	readonly before: State;
	call(method: string, url: string, init?: RequestInit): ReturnType<typeof httpCall>;
	raw(
		head: string,
		body?: Buffer | string,
		opts?: { trickleMs?: number; trickle?: string }
	): ReturnType<typeof rawRequest>;
	state(): Promise<State>;
}

export interface State {
	shows: unknown;
	stores: string[];
}

/**
 * Starts the system of `config` for the cases of one `describe` (before all of them, with a
 * booking to leave alone), takes the state before each case, and stops it after them.
 */
export function hostileSystem(config: HostileConfig): Hostile {
	let system: HostileSystem;
	let nodeID = "";
	let booking: { _id: string };
	let before: State;
	const call = (method: string, url: string, init: RequestInit = {}) =>
		httpCall(system.baseUrl, method, url, init);

	/** Every store file with its size. */
	const storeFiles = () =>
		["shows", "reservations"].flatMap(dir =>
			fs
				.readdirSync(path.join(system.dataDir, dir))
				.map(f => `${dir}/${f}:${fs.statSync(path.join(system.dataDir, dir, f)).size}`)
		);

	/**
	 * The shows as listed and every store file's size, once the stores are at rest: a booking's
	 * sale is settled by a write just after its answer (lib/shows/show-seats.ts), not the next request's.
	 */
	async function state(): Promise<State> {
		let stores = storeFiles();
		for (let still = 0; still < 3;) {
			await new Promise(resolve => setTimeout(resolve, 100));
			const now = storeFiles();
			still = now.join() === stores.join() ? still + 1 : 0;
			stores = now;
		}
		return { shows: (await call("GET", "/")).body, stores };
	}

	beforeAll(async () => {
		system = await startHostileSystem(config);
		nodeID = (await call("GET", "/health")).body.nodeID;
		booking = (
			await call("POST", "/reserve", jsonBody({ showID: ROCK, name: "Ann", count: 2 }))
		).body;
	});
	beforeEach(async () => {
		before = await state();
	});
	afterAll(async () => {
		await system?.stop();
	});

	return {
		config,
		get system() {
			return system;
		},
		get nodeID() {
			return nodeID;
		},
		get booking() {
			return booking;
		},
		get before() {
			return before;
		},
		call,
		raw: (head, body, opts) => rawRequest(system.port, head, body, opts),
		state
	};
}

/** A JSON error with a message, carrying nothing about our cluster. */
export function expectCleanError(h: Hostile, body: unknown, status: number) {
	expect(body).toMatchObject({
		code: status,
		message: expect.any(String),
		name: expect.any(String)
	});
	const text = JSON.stringify(body);
	expect(text).not.toContain(h.nodeID);
	expect(text).not.toMatch(
		/api\.|shows\.|reservations\.|"stack"|\/work\/|node_modules|\bat \w+ \(/
	);
}

export const form = (body: string, headers: Record<string, string> = {}): RequestInit => ({
	body,
	headers: { "content-type": "application/x-www-form-urlencoded", ...headers }
});

/** The head of a raw `POST /reserve` with these headers (and Content-Length, when given). */
export const rawPost = (headers: string[], length?: number) =>
	[
		"POST /reserve HTTP/1.1",
		"Host: tickets",
		"Connection: close",
		...(length === undefined ? [] : [`Content-Length: ${length}`]),
		...headers
	].join("\r\n");
