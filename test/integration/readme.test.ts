/**
 * README.md's commands work as written: every block marked `<!-- readme-test: NAME -->` runs here
 * against a real system (test/support/readme.ts says how), in the order a reader meets them:
 * the quick start and the walk-through on `npm start`, the REPL beside it and with `npm start --
 * --repl`, the cluster recipe with real nats-server and FerretDB processes, the REPL joining it,
 * and the compose file's check.
 *
 * Not run, because this test is their result: `npm ci` (CI runs it before `npm test`) and
 * `npm test` itself (in an unmarked block of its own).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { BIN_DIR, ensureBinary, freePort } from "../../scripts/servers";
import {
	awaitLines,
	freshCopy,
	localize,
	markedBlocks,
	matchesDocumented,
	runBash,
	session,
	shell,
	terminal,
	type Block,
	type Ports,
	type Shell,
	type StepResult,
	ROOT
} from "../support/readme";
import { waitForHealthy } from "../support/system";

const blocks = markedBlocks();
const ran = new Set<string>();
let ports: Ports;
let dataDir: string;
let composeBuilt: Promise<number | null>;
const running: Shell[] = [];

function block(name: string): Block {
	const found = blocks.get(name);
	if (!found) throw new Error(`README.md and docs/ have no block marked readme-test: ${name}`);
	ran.add(name);
	return found;
}

/** The reader's environment: none of this machine's or jest's settings, free ports, own folder. */
function readerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = { ...process.env };
	for (const name of [
		"TRANSPORTER",
		"MONGO_URI",
		"METRICS_PORT",
		"SERVICES",
		"SERVICEDIR",
		"NODE_ID",
		"NAMESPACE",
		"LOG_LEVEL",
		"DATA_DIR",
		"PORT"
	])
		delete env[name];
	return { ...env, PORT: String(ports.api), DATA_DIR: dataDir, ...extra };
}

/** Runs a bash block and checks every documented output. */
async function runDocumented(name: string, timeoutMs = 60000) {
	const { shell: run, results } = await runBash(block(name), ports, readerEnv(), timeoutMs);
	running.push(run);
	return checkDocumented(name, results);
}

function checkDocumented(name: string, results: StepResult[]): StepResult[] {
	for (const { step, printed } of results)
		if (step.expected !== null && !matchesDocumented(step.expected, printed))
			throw new Error(
				`README ${name}: \`${step.command}\` printed\n${printed}\ninstead of\n${step.expected}`
			);
	return results;
}

/** Starts a session block's command, types its lines, and checks their documented answers. */
async function runSession(name: string, env: NodeJS.ProcessEnv) {
	const { command, lines, output } = session(block(name));
	const run = shell(localize(command, ports), env, true);
	running.push(run);
	try {
		const missingAtStart = await awaitLines(run.output, output, 60000);
		expect({ name, missing: missingAtStart }).toEqual({ name, missing: [] });
		for (const line of lines) {
			if (line.input === "exit") {
				const prompt = await awaitLines(run.output, ["mol $"], 60000);
				expect(prompt).toEqual([]);
			}
			const from = run.output().length;
			run.child.stdin!.write(`${line.input}\n`);
			if (line.input === "exit") {
				expect(await run.exited).toBe(0);
				continue;
			}
			const missing = await awaitLines(() => run.output().slice(from), line.expected, 60000);
			expect({ typed: line.input, missing }).toEqual({ typed: line.input, missing: [] });
		}
		return run;
	} finally {
		if (!lines.some(l => l.input === "exit")) await run.exited;
		expect(run.output()).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/); // no stack trace
	}
}

beforeAll(async () => {
	ports = { api: await freePort(), nats: await freePort(), mongo: await freePort() };
	dataDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tickets-readme-")), "data");
	// The Compose CLI takes minutes to build the first time: build it while the systems run.
	composeBuilt = fs.existsSync(path.join(BIN_DIR, "docker-compose"))
		? Promise.resolve(0)
		: shell(`node -e 'require("./scripts/servers.js").ensureBinary("docker-compose")'`, {
				...process.env
			}).exited;
});

afterAll(async () => {
	for (const run of running.reverse()) await run.stop();
});

describe("on one embedded process", () => {
	let system: Shell;

	afterAll(async () => {
		for (const run of running.splice(0).reverse()) await run.stop();
	});

	it("the quick start runs the system", async () => {
		// The block is `npm ci && npm start`; npm ci has run before the tests (see above).
		const { body } = block("quick-start");
		expect(body).toMatch(/^npm ci && npm start\b/);
		system = shell("npm start", readerEnv());
		running.push(system);
		await waitForHealthy(`http://localhost:${ports.api}`, undefined, 90000).catch(err => {
			throw new Error(`${(err as Error).message}\n${system.output()}`);
		});
	}, 120000);

	it("the walk-through prints what it documents", async () => {
		const results = await runDocumented("walk-through");
		expect(results.filter(r => r.step.expected !== null).length).toBeGreaterThanOrEqual(8);
		// GET /reservations/:id: every field of the answer is in its documented output.
		const read = results.find(r => /^curl -s \S+\/reservations\/\$id\b/.test(r.step.command));
		const fields = Object.keys(JSON.parse(/\{.*\}/.exec(read?.printed ?? "")?.[0] ?? "{}"));
		expect(fields).toContain("_id");
		for (const field of fields) expect(read?.step.expected).toContain(`"${field}":`);
	});

	it("npm run repl beside it says what to do in one line, without a stack trace", async () => {
		const run = await runSession("repl-beside-embedded", readerEnv());
		expect(await run.exited).toBe(1);
	});

	it("npm start -- --repl beside it says once that the store is taken, without a stack trace", async () => {
		const second = shell(
			"npm start -- --repl",
			readerEnv({ PORT: String(await freePort()) }),
			true
		);
		running.push(second);
		expect(await second.exited).not.toBe(0);
		const output = second.output();
		expect(output.match(/already used by process \d+/g)).toHaveLength(1);
		expect(output).not.toMatch(/\n\s+at .*:\d+:\d+/); // no stack trace
		expect(output).not.toMatch(/Error:/);
	}, 120000);

	it("npm start -- --repl gives an embedded system its REPL with the operator commands", async () => {
		await system.stop();
		await runSession("repl-embedded", readerEnv());
	}, 120000);
});

describe("as a cluster over real nats-server and FerretDB processes", () => {
	// The recipe runs as a reader runs it: in one terminal, on a fresh clone where nothing is built
	// yet (not even the servers, whatever this checkout has built), with this checkout's packages.
	let clone: string;
	let reader: ReturnType<typeof terminal>;
	let ferret = "";

	beforeAll(() => {
		clone = freshCopy();
		reader = terminal(readerEnv(), clone);
		running.push(reader.shell);
	});

	afterAll(async () => {
		for (const run of running.splice(0).reverse()) await run.stop();
		fs.rmSync(clone, { recursive: true, force: true });
	});

	it("the cluster recipe on a fresh clone builds the servers with one command and gets /health 200, each node with its own metrics port", async () => {
		expect(fs.existsSync(path.join(clone, ".cache"))).toBe(false);
		// Building the servers takes a while the first time Go builds them on a machine.
		checkDocumented(
			"cluster-servers",
			await reader.run(block("cluster-servers"), ports, 900000)
		);
		// The servers run in the background of the reader's shell; wait for their ports.
		for (const port of [ports.nats, ports.mongo]) await waitForPort(port);
		// The reader's shell knows where the data lives.
		const [probe] = await reader.run(
			{ name: "probe", lang: "bash", body: 'echo "ferret=$ferret"' },
			ports,
			10000
		);
		ferret = /ferret=(\S+)/.exec(probe.printed)?.[1] ?? "";
		expect(fs.existsSync(ferret)).toBe(true);
		const results = checkDocumented(
			"cluster",
			await reader.run(block("cluster"), ports, 180000)
		);
		const output = results.map(r => r.printed).join("");
		expect(output).not.toMatch(/cannot be used \(EADDRINUSE\)/);
		// 3 + 2 + 2 nodes, each serving /metrics on a port of its own
		const metricsPorts = [
			...output.matchAll(/Prometheus metric reporter listening on http:\/\/[^:]+:(\d+)\//g)
		].map(m => Number(m[1]));
		expect(new Set(metricsPorts).size).toBe(7);
		for (const port of metricsPorts) {
			const res = await fetch(`http://127.0.0.1:${port}/metrics`);
			expect(res.status).toBe(200);
			await res.text();
		}
		// Both stores are where the README says, in FerretDB's folder.
		expect(fs.readdirSync(ferret)).toEqual(
			expect.arrayContaining(["shows.sqlite", "reservations.sqlite"])
		);
	}, 1200000);

	it("a METRICS_PORT set explicitly that is taken stops the node with a plain message", async () => {
		const taken = net.createServer();
		await new Promise<void>(resolve => taken.listen(0, () => resolve()));
		const port = (taken.address() as net.AddressInfo).port;
		try {
			const node = shell(
				"npm start",
				readerEnv({
					SERVICES: "api",
					PORT: String(await freePort()),
					METRICS_PORT: String(port)
				})
			);
			running.push(node);
			expect(await node.exited).not.toBe(0);
			expect(node.output()).toContain(
				`METRICS_PORT ${port} cannot be used (EADDRINUSE): set another METRICS_PORT, or 0 to turn metrics off`
			);
		} finally {
			taken.close();
		}
	}, 60000);

	it("npm run repl joins the cluster and runs the operator commands", async () => {
		await runSession("repl-cluster", readerEnv());
	}, 120000);

	it("stopping the cluster as the README says ends every process and logs no error", async () => {
		const results = await reader.run(block("cluster-stop"), ports, 120000);
		const output = results.map(r => r.printed).join("");
		expect(output).not.toMatch(/ERROR|FATAL/);
		expect(output).not.toMatch(/\n\s+at .*:\d+:\d+/); // no stack trace
		// Each of the three groups stopped all its instances and then itself.
		expect(output.match(/All workers stopped, exiting\./g)).toHaveLength(3);
		for (const port of [ports.api, ports.nats, ports.mongo])
			expect({ port, open: await isOpen(port) }).toEqual({ port, open: false });
		expect(fs.existsSync(ferret)).toBe(false);
	}, 180000);
});

it("docker compose config accepts the compose file", async () => {
	expect(await composeBuilt).toBe(0);
	const compose = composeBinary();
	const env = readerEnv(compose.env);
	const { shell: run, results } = await runBash(block("compose-config"), ports, env, 60000);
	await run.stop();
	const printed = results.map(r => r.printed).join("");
	expect(printed).not.toMatch(/error|invalid|not a docker command/i);
	// A broken file must fail the same check: the check can fail.
	const broken = fs.mkdtempSync(path.join(os.tmpdir(), "compose-broken-"));
	fs.writeFileSync(path.join(broken, "docker-compose.yml"), "services:\n  api:\n    ports: 3\n");
	const bad = shell(`cd ${broken} && docker compose config --quiet`, env);
	expect(await bad.exited).not.toBe(0);
}, 900000);

it("counts npm ci's engine warnings on Node 20 and names their packages as the lockfile has them", () => {
	// npm warns once (5 lines) for each installed package whose `engines.node` Node 20 does not meet.
	const semver = require("semver") as { satisfies(version: string, range: string): boolean };
	const lock = JSON.parse(fs.readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as {
		packages: Record<string, { engines?: { node?: string } }>;
	};
	const warned = Object.entries(lock.packages)
		.filter(([, p]) => p.engines?.node && !semver.satisfies("20.20.2", p.engines.node))
		.map(([at]) => at.replace(/^node_modules\//, ""));
	// "" is this project itself.
	const packages = warned.filter(name => name !== "");
	const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8").replace(/\s+/g, " ");
	const paragraph = /On Node 20, `npm ci` prints [^.]*\./.exec(readme)?.[0] ?? "";
	expect(paragraph).toContain(
		`prints ${warned.length} \`npm warn EBADENGINE Unsupported engine\` warnings of 5 lines each (${5 * warned.length} lines)`
	);
	expect(warned).toContain("");
	expect(paragraph).toContain("this project's own `engines`");
	for (const name of packages) expect(paragraph).toContain(`\`${name}\``);
});

it("runs every marked README block", () => {
	expect([...blocks.keys()].filter(name => !ran.has(name))).toEqual([]);
});

function isOpen(port: number): Promise<boolean> {
	return new Promise<boolean>(resolve => {
		const socket = net.connect(port, "127.0.0.1");
		socket.once("connect", () => (socket.destroy(), resolve(true)));
		socket.once("error", () => resolve(false));
	});
}

async function waitForPort(port: number) {
	for (let i = 0; i < 200; i++) {
		if (await isOpen(port)) return;
		await new Promise(r => setTimeout(r, 100));
	}
	throw new Error(`nothing listens on ${port}`);
}

/** `docker compose` for the README's check: the Compose v2 plugin, built once into .cache/bin. */
function composeBinary(): { env: Record<string, string> } {
	const bin = ensureBinary("docker-compose");
	const config = fs.mkdtempSync(path.join(os.tmpdir(), "docker-config-"));
	fs.mkdirSync(path.join(config, "cli-plugins"));
	fs.symlinkSync(bin, path.join(config, "cli-plugins", "docker-compose"));
	// Without a docker CLI on the machine, `docker compose` is the plugin run on its own.
	const shim = path.join(config, "bin");
	fs.mkdirSync(shim);
	fs.writeFileSync(
		path.join(shim, "docker"),
		`#!/bin/sh\n[ "$1" = compose ] && shift\nexec "${bin}" "$@"\n`,
		{ mode: 0o755 }
	);
	const hasDocker = shellHas("docker");
	return {
		env: hasDocker
			? { DOCKER_CONFIG: config }
			: { DOCKER_CONFIG: config, PATH: `${shim}:${process.env.PATH}` }
	};
}

function shellHas(command: string): boolean {
	try {
		execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
		return true;
	} catch {
		return false;
	}
}
