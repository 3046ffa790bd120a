/**
 * Runs the real system for integration tests: service processes started the way an operator
 * starts them (moleculer-runner on the built dist/), on real servers (nats-server, FerretDB)
 * unless TEST_NATS_URL / TEST_MONGO_URI name servers to use instead.
 */
import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
	freePort,
	startFerretDB,
	startNats,
	startNatsCluster,
	startToxiproxy,
	type NatsCluster,
	type ServerHandle
} from "../../scripts/servers";
import { toxiproxyClient, type ToxiproxyClient } from "./toxiproxy";

const ROOT = path.resolve(__dirname, "..", "..");

export interface NodeOptions {
	services: string;
	instances?: number;
	env?: Record<string, string>;
	/**
	 * Put this node's links to NATS and to the store behind proxies of their own (named
	 * `<NODE_ID>-nats`, `<NODE_ID>-store`), for `cluster.link`. Needs `startCluster({ proxies: true })`
	 * and a NODE_ID in `env`.
	 */
	proxied?: boolean;
	/**
	 * The checkout whose built dist/ this node runs: this repository unless given (the rolling
	 * upgrade runs the previous release from a worktree of its own, test/support/previous-release.ts).
	 */
	root?: string;
}

/** The servers a node talks to; each proxied node has one proxy per upstream. */
export type Upstream = "nats" | "store";

/** One node's link to one server, degraded on demand through its toxiproxy proxy. */
export interface Link {
	readonly proxy: string;
	/** Adds `ms` of delay each way (so a round trip over this link gains 2 × ms). */
	latency(ms: number): Promise<void>;
	/** Bytes stop both ways, connections stay open: a hung link, not a closed one. */
	stall(): Promise<void>;
	/** Closes the link's connections and refuses new ones: a partition. */
	cut(): Promise<void>;
	/** Back to a clean link: enabled, no toxics. */
	heal(): Promise<void>;
}

function proxyLink(toxi: ToxiproxyClient, proxy: string): Link {
	const both = ["upstream", "downstream"] as const;
	return {
		proxy,
		async latency(ms) {
			for (const stream of both)
				await toxi.addToxic(proxy, {
					name: `latency-${stream}`,
					type: "latency",
					stream,
					attributes: { latency: ms }
				});
		},
		async stall() {
			for (const stream of both)
				await toxi.addToxic(proxy, {
					name: `stall-${stream}`,
					type: "timeout",
					stream,
					attributes: { timeout: 0 }
				});
		},
		cut: async () => void (await toxi.setEnabled(proxy, false)),
		async heal() {
			const current = await toxi.getProxy(proxy);
			for (const toxic of current.toxics ?? []) await toxi.removeToxic(proxy, toxic.name);
			if (!current.enabled) await toxi.setEnabled(proxy, true);
		}
	};
}

/** Several links degraded together, e.g. a NATS server's routes to every other server. */
function linksTogether(proxy: string, links: Link[]): Link {
	const all = async (step: (link: Link) => Promise<void>) =>
		void (await Promise.all(links.map(step)));
	return {
		proxy,
		latency: ms => all(link => link.latency(ms)),
		stall: () => all(link => link.stall()),
		cut: () => all(link => link.cut()),
		heal: () => all(link => link.heal())
	};
}

/**
 * A NATS cluster of `size` servers whose every route runs through a proxy of its own
 * (`nats-route-<i>-<j>`), so that a server can be cut off from the others while its clients stay
 * connected to it.
 */
async function startRoutedNatsCluster(size: number, toxi: ToxiproxyClient) {
	return startNatsCluster(size, {
		async routeVia(from, to, clusterPort) {
			const listen = `127.0.0.1:${await freePort()}`;
			const name = `nats-route-${from}-${to}`;
			await toxi.createProxy({ name, listen, upstream: `127.0.0.1:${clusterPort}` });
			return listen;
		}
	});
}

/** `url` with its host and port replaced by `hostPort` (credentials and path kept). */
function throughProxy(url: string, hostPort: string): string {
	const parsed = new URL(url);
	parsed.host = hostPort;
	return parsed.toString();
}

export interface NodeHandle {
	readonly pid: number | undefined;
	output(): string;
	/** Resolves when the process has exited. */
	stop(signal?: NodeJS.Signals): Promise<void>;
	start(): Promise<void>;
	exited(): Promise<number | null>;
}

/** One process of the system; `start` again after `stop` runs the same command anew. */
export function systemNode(options: NodeOptions, baseEnv: Record<string, string>): NodeHandle {
	let child: ChildProcess | null = null;
	let output = "";
	let exit: Promise<number | null> = Promise.resolve(null);
	const root = options.root ?? ROOT;
	const runner = path.join(root, "node_modules", "moleculer", "bin", "moleculer-runner.js");
	const args = [runner, "--config", path.join(root, "dist", "moleculer.config.js")];
	if (options.instances && options.instances > 1)
		args.push("--instances", String(options.instances));
	return {
		get pid() {
			return child?.pid;
		},
		output: () => output,
		async start() {
			output = "";
			child = spawn(process.execPath, args, {
				cwd: root,
				env: {
					...process.env,
					SERVICEDIR: path.join(root, "dist", "services"),
					METRICS_PORT: "0",
					LOG_LEVEL: "warn",
					...baseEnv,
					...options.env,
					SERVICES: options.services
				},
				stdio: ["ignore", "pipe", "pipe"]
			});
			const proc = child;
			proc.stdout!.on("data", d => (output += d.toString()));
			proc.stderr!.on("data", d => (output += d.toString()));
			exit = new Promise(resolve => proc.once("exit", code => resolve(code)));
		},
		exited: () => exit,
		async stop(signal: NodeJS.Signals = "SIGTERM") {
			if (!child || child.exitCode !== null || child.signalCode !== null) return;
			child.kill(signal);
			await exit;
		}
	};
}

export interface Cluster {
	baseUrl: string;
	port: number;
	nats: (ServerHandle & { url: string }) | null;
	/** With `startCluster({ natsServers })`: the NATS cluster that TRANSPORTER lists. */
	natsCluster: NatsCluster | null;
	mongo: (ServerHandle & { uri: string }) | null;
	toxiproxy: (ServerHandle & { apiUrl: string }) | null;
	env: Record<string, string>;
	nodes: NodeHandle[];
	add(options: NodeOptions): Promise<NodeHandle>;
	/** The link of a proxied node (by NODE_ID) to NATS or the store. */
	link(nodeId: string, upstream: Upstream): Link;
	/** The routes of NATS server `server` (of `natsCluster`) to every other server. */
	routesOf(server: number): Link;
	stop(): Promise<void>;
}

/**
 * Tests that burst checkouts at a gateway (to prove seat safety) run on a shared, slow machine: there
 * a checkout waits for an admission slot rather than be refused after the production wait of 500 ms.
 * The tests of admission itself (surge.test.ts) set their own limits.
 */
const PATIENT_ADMISSION = { ADMISSION_QUEUE_WAIT_MS: "10000" };

/**
 * Real servers (own ones unless given) and a namespace of its own for one test file. With
 * `natsServers`, its own NATS cluster of that many servers, routed through proxies (no outside
 * server replaces it), and every node's TRANSPORTER lists them all.
 */
export async function startCluster(
	opts: {
		mongo?: boolean;
		proxies?: boolean;
		natsServers?: number;
		env?: Record<string, string>;
	} = {}
) {
	const id = crypto.randomBytes(4).toString("hex");
	const toxiproxy = opts.proxies || opts.natsServers ? await startToxiproxy() : null;
	const toxi = toxiproxy && toxiproxyClient(toxiproxy.apiUrl);
	const natsCluster =
		opts.natsServers && toxi ? await startRoutedNatsCluster(opts.natsServers, toxi) : null;
	await natsCluster?.routed();
	const nats = natsCluster || process.env.TEST_NATS_URL ? null : await startNats();
	const wantMongo = opts.mongo !== false;
	const mongo = wantMongo && !process.env.TEST_MONGO_URI ? await startFerretDB() : null;
	const port = await freePort();
	const env: Record<string, string> = {
		NAMESPACE: `test-${id}`,
		TRANSPORTER: natsCluster?.url ?? nats?.url ?? process.env.TEST_NATS_URL!,
		PORT: String(port),
		RATE_LIMIT: "0",
		...PATIENT_ADMISSION,
		...(wantMongo
			? {
					MONGO_URI: mongo ? mongo.uri : process.env.TEST_MONGO_URI!,
					MONGO_DB_PREFIX: mongo ? "" : `test_${id}_`
				}
			: { DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "tickets-")) }),
		...opts.env
	};
	const cluster: Cluster = {
		baseUrl: `http://127.0.0.1:${port}`,
		port,
		nats,
		natsCluster,
		mongo,
		toxiproxy,
		env,
		nodes: [],
		async add(options) {
			const nodeEnv = { ...env };
			if (options.proxied) {
				const nodeId = options.env?.NODE_ID;
				if (!toxi || !nodeId) throw new Error("a proxied node needs proxies and a NODE_ID");
				const upstreams = { nats: "TRANSPORTER", store: "MONGO_URI" } as const;
				for (const [upstream, variable] of Object.entries(upstreams)) {
					const listen = `127.0.0.1:${await freePort()}`;
					await toxi.createProxy({
						name: `${nodeId}-${upstream}`,
						listen,
						upstream: new URL(env[variable]).host
					});
					nodeEnv[variable] = throughProxy(env[variable], listen);
				}
			}
			const node = systemNode(options, nodeEnv);
			await node.start();
			cluster.nodes.push(node);
			return node;
		},
		link(nodeId, upstream) {
			if (!toxi) throw new Error("startCluster({ proxies: true }) runs no proxies");
			return proxyLink(toxi, `${nodeId}-${upstream}`);
		},
		routesOf(server) {
			const size = natsCluster?.servers.length ?? 0;
			if (!toxi || server >= size)
				throw new Error(`no NATS server ${server} in this cluster`);
			const others = Array.from({ length: size }, (_, j) => j).filter(j => j !== server);
			const proxies = others.map(j =>
				proxyLink(toxi, `nats-route-${Math.max(server, j)}-${Math.min(server, j)}`)
			);
			return linksTogether(`nats-${server}-routes`, proxies);
		},
		async stop() {
			await Promise.all(cluster.nodes.map(n => n.stop()));
			await toxiproxy?.stop();
			await nats?.stop();
			await natsCluster?.stop();
			await mongo?.stop();
		}
	};
	return cluster;
}

/** A single process running the whole system on embedded stores, as `npm start` does. */
export async function startEmbedded(env: Record<string, string> = {}) {
	const port = await freePort();
	const dataDir = env.DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), "tickets-"));
	const node = systemNode(
		{ services: "shows,reservations,api" },
		{ PORT: String(port), DATA_DIR: dataDir, RATE_LIMIT: "0", ...PATIENT_ADMISSION, ...env }
	);
	await node.start();
	const baseUrl = `http://127.0.0.1:${port}`;
	await waitForHealthy(baseUrl, node);
	return { node, baseUrl, dataDir, port };
}

/** Waits until GET /health answers 200, or fails with the process output. */
export async function waitForHealthy(baseUrl: string, node?: NodeHandle, timeoutMs = 30000) {
	const deadline = Date.now() + timeoutMs;
	let last = "";
	while (Date.now() < deadline) {
		try {
			const res = await fetch(`${baseUrl}/health`);
			if (res.status === 200) return;
			last = `${res.status} ${await res.text()}`;
		} catch (err) {
			last = String(err);
		}
		await new Promise(r => setTimeout(r, 200));
	}
	throw new Error(`system at ${baseUrl} not healthy: ${last}\n${node?.output() ?? ""}`);
}
