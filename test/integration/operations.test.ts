/**
 * Operating the cluster: the operator REPL joined over a real nats-server, health, Prometheus
 * metrics, and the gateway's protections (rate limit, CORS), each service in its own process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import path from "node:path";
import { freePort } from "../../scripts/servers";
import { counterOnNode } from "../support/probe";
import {
	startCluster,
	startEmbedded,
	waitForHealthy,
	type Cluster,
	type NodeHandle
} from "../support/system";

const ROOT = path.resolve(__dirname, "..", "..");
const PLAY = "5b805a570cee1505a52bc75d";
const RATE_LIMIT = 20;
const ALLOWED_ORIGIN = "https://tickets.example";

let cluster: Cluster;
let shows: NodeHandle;
let metricsPort: number;

function reserve(body: Record<string, unknown>, headers: Record<string, string> = {}) {
	return fetch(`${cluster.baseUrl}/reserve`, {
		method: "POST",
		headers: { "content-type": "application/json", ...headers },
		body: JSON.stringify(body)
	});
}

/** The operator REPL as a person runs it: `node scripts/repl.js` with TRANSPORTER set. */
function startRepl() {
	const child: ChildProcessWithoutNullStreams = spawn(
		process.execPath,
		[path.join(ROOT, "scripts", "repl.js")],
		{
			cwd: ROOT,
			env: {
				...process.env,
				TRANSPORTER: cluster.env.TRANSPORTER,
				NAMESPACE: cluster.env.NAMESPACE,
				LOG_LEVEL: "warn"
			}
		}
	);
	let output = "";
	child.stdout.on("data", d => (output += d.toString()));
	child.stderr.on("data", d => (output += d.toString()));
	return {
		/** Types a command and waits until its output matches `expected`. */
		async run(command: string, expected: RegExp): Promise<string> {
			const from = output.length;
			child.stdin.write(`${command}\n`);
			const deadline = Date.now() + 20000;
			while (Date.now() < deadline) {
				const answer = output.slice(from);
				if (expected.test(answer)) return answer;
				await new Promise(r => setTimeout(r, 100));
			}
			throw new Error(`"${command}" did not print ${expected}:\n${output.slice(from)}`);
		},
		stop: () =>
			new Promise<void>(resolve => {
				child.once("exit", () => resolve());
				child.kill();
			})
	};
}

beforeAll(async () => {
	metricsPort = await freePort();
	cluster = await startCluster({
		mongo: false,
		env: { RATE_LIMIT: String(RATE_LIMIT), CORS_ORIGINS: ALLOWED_ORIGIN }
	});
	shows = await cluster.add({ services: "shows", env: { NODE_ID: "shows" } });
	await cluster.add({ services: "reservations", env: { NODE_ID: "reservations" } });
	await cluster.add({
		services: "api",
		env: { NODE_ID: "api", METRICS_PORT: String(metricsPort) }
	});
	await waitForHealthy(cluster.baseUrl, cluster.nodes[2], 60000);
}, 120000);

afterAll(async () => {
	await cluster?.stop();
});

it("the operator REPL lists shows, adds and resizes one, lists holds and reservations, and cancels", async () => {
	const booked = (await (await reserve({ name: "Opal", count: 2, showID: PLAY })).json()) as any;
	const repl = startRepl();
	try {
		await repl.run("services", /reservations[\s\S]*shows/);
		const table = await repl.run("shows", /Monster Truck Rally/);
		expect(table).toMatch(/Shakespeare Play\s*│\s*50\s*│\s*2\s*│\s*48/);

		await repl.run('add-show "Hamlet" 120', /Added Hamlet \(([0-9a-f]{24})\)/);
		const list = (await (await fetch(`${cluster.baseUrl}/`)).json()) as any[];
		const hamlet = list.find(s => s.name === "Hamlet");
		expect(hamlet).toMatchObject({ houseSize: 120, reserved: 0, available: 120 });

		await repl.run(`resize ${hamlet._id} 80`, /Hamlet: 80 seats, 80 available/);
		await repl.run(`resize ${PLAY} 1`, /Refused: cannot make the house 1 seats/);
		await repl.run("holds", /\(none\)|checkout/);
		await repl.run(`reservations ${PLAY}`, new RegExp(`${booked._id}[\\s\\S]*Opal`));
		await repl.run(`cancel ${booked._id}`, /Canceled .* 2 seat\(s\)/);
		const play = (await (await fetch(`${cluster.baseUrl}/shows/${PLAY}`)).json()) as any;
		expect(play.reserved).toBe(0);
	} finally {
		await repl.stop();
	}
}, 60000);

it("counts checkouts by outcome on the node's Prometheus endpoint", async () => {
	const before = await counterOnNode(metricsPort, "tickets_checkouts_total", 'outcome="booked"');
	const soldOutBefore = await counterOnNode(
		metricsPort,
		"tickets_checkouts_total",
		'outcome="sold_out"'
	);
	expect((await reserve({ name: "Metric", count: 1, showID: PLAY })).status).toBe(201);
	expect(
		(await reserve({ name: "Metric", count: 1, showID: "5b805a790cee1505a52bc75e" })).status
	).toBe(409);
	expect(await counterOnNode(metricsPort, "tickets_checkouts_total", 'outcome="booked"')).toBe(
		before + 1
	);
	expect(await counterOnNode(metricsPort, "tickets_checkouts_total", 'outcome="sold_out"')).toBe(
		soldOutBefore + 1
	);
});

it("answers CORS preflights only for the configured origins", async () => {
	const preflight = (origin: string) =>
		fetch(`${cluster.baseUrl}/reserve`, {
			method: "OPTIONS",
			headers: {
				origin,
				"access-control-request-method": "POST",
				"access-control-request-headers": "content-type"
			}
		});
	const allowed = await preflight(ALLOWED_ORIGIN);
	expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
	const other = await preflight("https://evil.example");
	expect(other.headers.get("access-control-allow-origin")).not.toBe("https://evil.example");
});

it("health is 503 with Retry-After while shows is down, checkouts get 503 at once, and both recover", async () => {
	const healthy = await fetch(`${cluster.baseUrl}/health`);
	expect(healthy.status).toBe(200);
	expect(await healthy.json()).toMatchObject({ status: "ok", services: { shows: true } });

	await shows.stop();
	const deadline = Date.now() + 20000;
	let health = await fetch(`${cluster.baseUrl}/health`);
	while (health.status !== 503 && Date.now() < deadline) {
		await new Promise(r => setTimeout(r, 200));
		health = await fetch(`${cluster.baseUrl}/health`);
	}
	expect(health.status).toBe(503);
	expect(health.headers.get("retry-after")).toBeTruthy();
	expect(await health.json()).toMatchObject({
		status: "unavailable",
		services: { shows: false }
	});
	// A hang would abort this request and fail the test.
	const checkout = await fetch(`${cluster.baseUrl}/reserve`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ name: "Down", count: 1, showID: PLAY }),
		signal: AbortSignal.timeout(20000)
	});
	expect(checkout.status).toBe(503);
	expect(checkout.headers.get("retry-after")).toBeTruthy();
	expect(await checkout.json()).toMatchObject({ code: 503, name: expect.any(String) });

	await shows.start();
	await waitForHealthy(cluster.baseUrl, shows, 30000);
}, 60000);

it("rate-limits checkouts per client with 429 and Retry-After, but not reads or health", async () => {
	// The list is warm, so checkouts of the sold-out rally are refused at the gateway's front
	// door (lib/gateway/sold-out-refusals.ts): they count against the limit all the same.
	const read = await fetch(`${cluster.baseUrl}/`, { headers: { origin: ALLOWED_ORIGIN } });
	expect(read.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
	const answers: Response[] = [];
	for (let i = 0; i < RATE_LIMIT + 2; i++)
		answers.push(
			await reserve(
				{ name: "Rapid", count: 1, showID: "5b805a790cee1505a52bc75e" },
				{ origin: ALLOWED_ORIGIN }
			)
		);
	expect(answers[0].status).toBe(409);
	for (const answer of answers)
		expect(answer.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
	const limited = answers.filter(a => a.status === 429);
	expect(limited.length).toBeGreaterThan(0);
	expect(Number(limited[0].headers.get("retry-after"))).toBeGreaterThan(0);
	expect(await limited[0].json()).toMatchObject({ code: 429, name: expect.any(String) });
	for (let i = 0; i < RATE_LIMIT * 3; i++) {
		expect((await fetch(`${cluster.baseUrl}/`)).status).toBe(200);
		expect((await fetch(`${cluster.baseUrl}/health`)).status).toBe(200);
	}
});

it("prints a trace of every call with TRACE_EXPORTER=console, and a one-line log per request", async () => {
	const traced = await startEmbedded({ TRACE_EXPORTER: "console", LOG_LEVEL: "info" });
	try {
		const booked = await fetch(`${traced.baseUrl}/reserve`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ name: "Private Name", count: 1, showID: PLAY })
		});
		expect(booked.status).toBe(201);
		const deadline = Date.now() + 10000;
		// The access log is buffered (lib/gateway/access-log.ts): its line may come a moment later.
		while (
			!(
				traced.node.output().includes("action 'reservations.confirm'") &&
				traced.node.output().includes("POST /reserve 201")
			) &&
			Date.now() < deadline
		)
			await new Promise(r => setTimeout(r, 100));
		const output = traced.node.output();
		expect(output).toMatch(/action 'api\.checkout'/);
		expect(output).toMatch(/action 'shows\.holdSeats'/);
		expect(output).toMatch(/action 'reservations\.confirm'/);
		expect(output).toMatch(/POST \/reserve 201 [\d.]+ms/);
		expect(output).not.toContain("Private Name");
	} finally {
		await traced.node.stop();
	}
});
