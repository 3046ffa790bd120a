/**
 * docker-compose.yml in real containers: podman behind its Docker-compatible API (a `podman system
 * service` of the test's own, on a socket in a temporary folder), driven by Compose v2 through
 * scripts/local-stack.sh, on the images of scripts/local-images.sh. A project of its own name, with
 * the host ports chosen free at run time and published on loopback only.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../scripts/servers";

export const ROOT = path.resolve(__dirname, "..", "..");
const CONTAINERS_CONF = path.join(ROOT, "deploy", "local", "containers.conf");

/** The replicas of the local stack: every service of docker-compose.yml but Grafana. */
export const REPLICAS: Record<string, number> = {
	"nats-1": 1,
	"nats-2": 1,
	"nats-3": 1,
	mongo: 1,
	shows: 4,
	reservations: 2,
	api: 2,
	proxy: 1,
	prometheus: 1
};
export const SERVICES = Object.keys(REPLICAS);

export interface RunResult {
	code: number;
	stdout: string;
	stderr: string;
}

export function run(
	command: string,
	args: string[],
	env: NodeJS.ProcessEnv = process.env,
	timeoutMs = 120000
): Promise<RunResult> {
	return new Promise(resolve => {
		execFile(
			command,
			args,
			{ cwd: ROOT, env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
			(err, stdout, stderr) => {
				const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
				resolve({ code, stdout, stderr });
			}
		);
	});
}

export function failWith(what: string, result: RunResult): never {
	throw new Error(`${what} failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
}

/**
 * Whether podman is installed (Debian's `podman` package). Under CI its absence is an error, never
 * a silent pass: .ci/run installs it.
 */
export async function podmanGate(): Promise<boolean> {
	if ((await run("podman", ["--version"])).code === 0) return true;
	if (process.env.CI === "true")
		throw new Error(
			"podman is not installed, so the compose stack cannot run: .ci/run installs it " +
				"(apt-get install -y podman runc debootstrap)"
		);
	return false;
}

export interface Container {
	id: string;
	service: string;
	state: string;
}

export interface Stack {
	project: string;
	env: NodeJS.ProcessEnv;
	apiPort: number;
	prometheusPort: number;
	mongoPort: number;
	natsPort: number;
	user: string;
	password: string;
	compose(args: string[], timeoutMs?: number): Promise<RunResult>;
	podman(args: string[], timeoutMs?: number): Promise<RunResult>;
	containers(): Promise<Container[]>;
	/** Runs a container's health check now; true when it passes. */
	healthy(id: string): Promise<boolean>;
	stop(): Promise<void>;
}

async function waitForSocket(socket: string, service: ChildProcess, log: () => string) {
	const deadline = Date.now() + 30000;
	while (Date.now() < deadline) {
		if (service.exitCode !== null) break;
		if (fs.existsSync(socket)) return;
		await new Promise(r => setTimeout(r, 100));
	}
	throw new Error(`podman system service did not open ${socket}:\n${log()}`);
}

/**
 * Starts a podman API service of the test's own and prepares a compose project: the stack's own
 * file plus an override that publishes the test's ports and shortens the hold and timeouts (as the
 * fault tests do), so that a killed node's checkouts settle within the test.
 */
export async function prepareStack(appEnv: Record<string, string>): Promise<Stack> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tickets-compose-"));
	const socket = path.join(dir, "podman.sock");
	const project = `tickets-test-${crypto.randomBytes(3).toString("hex")}`;
	const [apiPort, prometheusPort, mongoPort, natsPort] = await Promise.all(
		Array.from({ length: 4 }, () => freePort())
	);
	const user = "tickets";
	const password = `pw-${crypto.randomBytes(9).toString("hex")}`;

	const serviceLog: string[] = [];
	const service = spawn("podman", ["system", "service", "--time=0", `unix://${socket}`], {
		env: { ...process.env, CONTAINERS_CONF },
		stdio: ["ignore", "pipe", "pipe"]
	});
	service.stdout?.on("data", d => serviceLog.push(String(d)));
	service.stderr?.on("data", d => serviceLog.push(String(d)));
	await waitForSocket(socket, service, () => serviceLog.join(""));

	const appOverride = Object.entries(appEnv)
		.map(([name, value]) => `            ${name}: "${value}"`)
		.join("\n");
	const override = path.join(dir, "compose.test.yml");
	fs.writeFileSync(
		override,
		[
			"services:",
			"    mongo:",
			`        ports: ["127.0.0.1:${mongoPort}:27017"]`,
			"    nats-1:",
			`        ports: ["127.0.0.1:${natsPort}:4222"]`,
			...["shows", "reservations", "api"].flatMap(name => [
				`    ${name}:`,
				"        environment:",
				appOverride
			]),
			""
		].join("\n")
	);

	const env: NodeJS.ProcessEnv = {
		...process.env,
		CONTAINERS_CONF,
		DOCKER_HOST: `unix://${socket}`,
		NATS_USER: user,
		NATS_PASSWORD: password,
		MONGO_USER: user,
		MONGO_PASSWORD: password,
		API_PORT: String(apiPort),
		PROMETHEUS_PORT: String(prometheusPort)
	};
	const projectArgs = ["-p", project, "-f", "docker-compose.yml", "-f", override];
	const podman = (args: string[], timeoutMs?: number) => run("podman", args, env, timeoutMs);

	return {
		project,
		env,
		apiPort,
		prometheusPort,
		mongoPort,
		natsPort,
		user,
		password,
		compose: (args, timeoutMs) =>
			run("bash", ["scripts/local-stack.sh", ...projectArgs, ...args], env, timeoutMs),
		podman,
		async containers() {
			const listed = await podman([
				"ps",
				"-a",
				"--filter",
				`label=com.docker.compose.project=${project}`,
				"--format",
				"json"
			]);
			return (JSON.parse(listed.stdout || "[]") as any[]).map(c => ({
				id: c.Id as string,
				service: c.Labels?.["com.docker.compose.service"] as string,
				state: c.State as string
			}));
		},
		async healthy(id) {
			return (await podman(["healthcheck", "run", id], 30000)).code === 0;
		},
		async stop() {
			service.kill("SIGTERM");
			await new Promise(r => (service.exitCode !== null ? r(null) : service.once("exit", r)));
			fs.rmSync(dir, { recursive: true, force: true });
		}
	};
}

/** Waits until every replica runs and passes its health check (Prometheus has none: running). */
export async function waitUntilAllHealthy(stack: Stack, timeoutMs: number) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const counts: Record<string, number> = {};
		const unhealthy: string[] = [];
		for (const c of await stack.containers()) {
			const ok =
				c.state === "running" &&
				(c.service === "prometheus" || (await stack.healthy(c.id)));
			if (ok) counts[c.service] = (counts[c.service] ?? 0) + 1;
			else unhealthy.push(`${c.service} ${c.id.slice(0, 12)} ${c.state}`);
		}
		const short = SERVICES.filter(name => counts[name] !== REPLICAS[name]);
		if (short.length === 0 && unhealthy.length === 0) return;
		if (Date.now() > deadline)
			throw new Error(
				`stack not healthy: ${JSON.stringify(counts)}; not: ${unhealthy.join(", ")}`
			);
		await new Promise(r => setTimeout(r, 2000));
	}
}

/** The Cluster fields that test/support/checkout-load.ts and probe.ts use, for this stack. */
export function stackAsCluster(stack: Stack) {
	return {
		baseUrl: `http://127.0.0.1:${stack.apiPort}`,
		port: stack.apiPort,
		env: {
			NAMESPACE: "theatre",
			TRANSPORTER: `nats://${stack.user}:${stack.password}@127.0.0.1:${stack.natsPort}`,
			MONGO_URI:
				`mongodb://${stack.user}:${stack.password}@127.0.0.1:${stack.mongoPort}/` +
				"?authSource=admin&authMechanism=PLAIN"
		}
	};
}
