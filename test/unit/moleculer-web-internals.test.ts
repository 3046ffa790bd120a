/**
 * The moleculer-web and Node internals that lib/gateway/moleculer-web-internals.ts wraps are still
 * there and still behave as the front door relies on. Pinned to the installed moleculer-web: an
 * upgrade fails here first, with the part that changed named.
 */
import fs from "node:fs";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import net, { type AddressInfo } from "node:net";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import {
	callActionsOnThisNode,
	countRateLimitHit,
	gatewayRoutes,
	listenForCrowds,
	sharesPort,
	PINNED_MOLECULER_WEB,
	RateLimitExceeded,
	responseOnSocket,
	routeRequest,
	writeCorsHeaders
} from "../../lib/gateway/moleculer-web-internals";

const ALLOWED = "https://good.example";

let broker: ServiceBroker;
let gateway: object;

beforeAll(async () => {
	broker = new ServiceBroker({ logger: false });
	broker.createService({
		name: "probe",
		actions: { hello: { params: {}, handler: () => ({ hello: true }) } }
	});
	gateway = broker.createService({
		name: "web",
		mixins: [ApiGateway as unknown as ServiceSchema],
		settings: {
			server: false,
			cors: { origin: [ALLOWED], methods: ["GET"] },
			routes: [
				{
					name: "probe",
					path: "",
					mappingPolicy: "restrict",
					aliases: { "GET /hello": "probe.hello" },
					rateLimit: { window: 60000, limit: 2, headers: true, key: () => "client" }
				}
			]
		}
	});
	await broker.start();
});
afterAll(() => broker.stop());

/** One request through a bare Node server whose handler is `handle`; resolves to the answer. */
async function through(
	handle: (req: IncomingMessage, res: ServerResponse) => void,
	headers: Record<string, string> = {}
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
	const server = http.createServer(handle);
	await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	try {
		const res = await fetch(`http://127.0.0.1:${port}/hello`, { headers });
		return {
			status: res.status,
			headers: Object.fromEntries(res.headers),
			body: await res.text()
		};
	} finally {
		server.close();
	}
}

/** What moleculer-web hands to `next`: an error it could not answer, written as its status. */
function answerRefusal(res: ServerResponse) {
	return (err?: unknown) => {
		res.statusCode = (err as { code?: number } | undefined)?.code ?? 500;
		res.end(String((err as Error | undefined)?.name));
	};
}

it(`is moleculer-web ${PINNED_MOLECULER_WEB}, the release these internals were read from`, () => {
	expect(require("moleculer-web/package.json").version).toBe(PINNED_MOLECULER_WEB);
});

it("builds the routes from the settings, with CORS and a rate limit whose store counts", async () => {
	const [route] = gatewayRoutes(gateway);
	expect(route.name).toBe("probe");
	expect(route.cors).toMatchObject({ origin: [ALLOWED] });
	expect(route.rateLimit).toMatchObject({ limit: 2, headers: true });
	expect(typeof route.rateLimit!.store.inc).toBe("function");
	expect(typeof route.rateLimit!.store.resetTime).toBe("number");
});

it("resolves a route's action with the route's call options, so that a node id pins it", async () => {
	const source = String(
		(ApiGateway as unknown as { methods: { aliasHandler: () => void } }).methods.aliasHandler
	);
	expect(source).toMatch(/findNextActionEndpoint\(\s*alias\.action,\s*route\.callOptions,/);
	callActionsOnThisNode(gateway, broker.nodeID);
	expect(gatewayRoutes(gateway)[0].callOptions).toMatchObject({ nodeID: broker.nodeID });
	const elsewhere = await through((req, res) => {
		gatewayRoutes(gateway)[0].callOptions = { nodeID: "no-such-node" };
		routeRequest(gateway, req, res, answerRefusal(res));
	});
	expect(elsewhere.status).not.toBe(200);
	callActionsOnThisNode(gateway, broker.nodeID);
});

it("routes a request through its own handler", async () => {
	const answer = await through((req, res) => routeRequest(gateway, req, res, answerRefusal(res)));
	expect(answer.status).toBe(200);
	expect(JSON.parse(answer.body)).toEqual({ hello: true });
});

it("writes CORS headers for a listed origin and throws for any other (so the door drops it)", async () => {
	const [route] = gatewayRoutes(gateway);
	const allowed = await through(
		(req, res) => {
			writeCorsHeaders(gateway, route, req, res);
			res.end();
		},
		{ origin: ALLOWED }
	);
	expect(allowed.headers["access-control-allow-origin"]).toBe(ALLOWED);
	const thrown: unknown[] = [];
	await through(
		(req, res) => {
			try {
				writeCorsHeaders(gateway, route, req, res);
			} catch (err) {
				thrown.push(err);
			}
			res.end();
		},
		{ origin: "https://evil.example" }
	);
	expect(thrown).toHaveLength(1);
	expect((thrown[0] as Error).name).toBe("ForbiddenError");
});

it("counts the rate limit as its alias handler does, whose lines the adapter repeats", async () => {
	const source = String(
		(ApiGateway as unknown as { methods: { aliasHandler: () => void } }).methods.aliasHandler
	);
	for (const line of [
		"const remaining = opts.limit - (await store.inc(key));",
		'res.setHeader("X-Rate-Limit-Limit", opts.limit);',
		'res.setHeader("X-Rate-Limit-Remaining", Math.max(0, remaining));',
		'res.setHeader("X-Rate-Limit-Reset", store.resetTime);',
		"throw new RateLimitExceeded();"
	])
		expect(source).toContain(line);
	const limit = { ...gatewayRoutes(gateway)[0].rateLimit!, key: () => "another client" };
	const seen: boolean[] = [];
	const answer = await through(async (_req, res) => {
		for (let i = 0; i < 3; i++)
			seen.push(await countRateLimitHit(limit, "another client", res));
		res.end();
	});
	expect(seen).toEqual([true, true, false]);
	expect(answer.headers["x-rate-limit-remaining"]).toBe("0");
	expect(new RateLimitExceeded()).toMatchObject({ code: 429 });
});

it("lets the server's socket name the response it is writing (Node's _httpMessage)", async () => {
	let same = false;
	await through((req, res) => {
		same = responseOnSocket(req.socket) === res;
		res.end();
	});
	expect(same).toBe(true);
});

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Sockets listening on `port` now, from the kernel's table (Linux). */
function listeningSockets(port: number): number {
	const hex = port.toString(16).toUpperCase().padStart(4, "0");
	return ["/proc/net/tcp", "/proc/net/tcp6"]
		.filter(file => fs.existsSync(file))
		.flatMap(file => fs.readFileSync(file, "utf8").split("\n").slice(1))
		.map(line => line.trim().split(/\s+/))
		.filter(([, local, , state]) => local?.endsWith(`:${hex}`) && state === "0A").length;
}

/** A gateway on its own broker, listening as `listenForCrowds` has it, on `port` (0: any). */
function crowdGateway(
	port: number,
	sockets: number,
	keepAliveTimeoutMs = 5000,
	more: Pick<Parameters<typeof listenForCrowds>[1], "failed" | "canSharePort"> = {}
) {
	const own = new ServiceBroker({ logger: false });
	own.createService({
		name: "probe",
		actions: { hello: { params: {}, handler: () => ({ hello: true }) } }
	});
	const web = own.createService({
		name: "web",
		mixins: [ApiGateway as unknown as ServiceSchema],
		settings: {
			port,
			ip: "127.0.0.1",
			routes: [
				{ path: "", mappingPolicy: "restrict", aliases: { "GET /hello": "probe.hello" } }
			]
		}
	});
	listenForCrowds(web, { backlog: 1024, sockets, keepAliveTimeoutMs, ...more });
	const server = (web as unknown as { server: http.Server }).server;
	return { broker: own, server, port: () => (server.address() as AddressInfo).port };
}

describe("listenForCrowds", () => {
	it("shares a port among sockets only where Node's reusePort works: Linux or FreeBSD, Node 22.12 or 23.1 on", () => {
		expect(sharesPort("linux", "22.23.3")).toBe(true);
		expect(sharesPort("linux", "22.12.0")).toBe(true);
		expect(sharesPort("linux", "23.1.0")).toBe(true);
		expect(sharesPort("freebsd", "24.0.0")).toBe(true);
		// Older Nodes ignore the option (the extra sockets find the port taken).
		expect(sharesPort("linux", "22.11.0")).toBe(false);
		expect(sharesPort("linux", "23.0.0")).toBe(false);
		expect(sharesPort("linux", "20.19.5")).toBe(false);
		// On macOS and Windows the option ends the server.
		expect(sharesPort("darwin", "22.23.3")).toBe(false);
		expect(sharesPort("win32", "24.0.0")).toBe(false);
		// This machine and its Node (the project's own) share a port.
		expect(sharesPort()).toBe(process.platform === "linux");
	});

	it("listens on one socket, and says so once, where a port cannot be shared", async () => {
		const told: string[] = [];
		const gateway = crowdGateway(0, 4, 5000, {
			canSharePort: false,
			failed: err => told.push(err.message)
		});
		await gateway.broker.start();
		const port = gateway.port();
		try {
			expect(listeningSockets(port)).toBe(1);
			expect(told).toEqual([expect.stringContaining("listening on one")]);
			const res = await fetch(`http://127.0.0.1:${port}/hello`);
			expect(await res.json()).toEqual({ hello: true });
		} finally {
			await gateway.broker.stop();
		}
	});

	it("listens on as many sockets as asked, on one port, every one answered by the gateway", async () => {
		const gateway = crowdGateway(0, 4);
		await gateway.broker.start();
		const port = gateway.port();
		try {
			expect(listeningSockets(port)).toBe(4);
			// Fresh connections, spread by the kernel over the sockets.
			const answers = await Promise.all(
				Array.from({ length: 40 }, () =>
					fetch(`http://127.0.0.1:${port}/hello`, {
						headers: { connection: "close" }
					}).then(res => res.json())
				)
			);
			expect(answers).toEqual(Array(40).fill({ hello: true }));
		} finally {
			await gateway.broker.stop();
		}
		expect(listeningSockets(port)).toBe(0);
	});

	it("answers a client that half-closes after its request, with the http server's socket options on every socket", async () => {
		const gateway = crowdGateway(0, 4);
		await gateway.broker.start();
		const port = gateway.port();
		const halfOpen: boolean[] = [];
		gateway.server.on("connection", (socket: net.Socket) =>
			halfOpen.push(socket.allowHalfOpen)
		);
		// A client that sends its request and then shuts its side (as `nc -N` does) is still owed
		// the answer: the http server's sockets allow half-open connections, and so must the rest.
		const halfClosed = () =>
			new Promise<string>((resolve, reject) => {
				const socket = net.connect(port, "127.0.0.1", () =>
					socket.end("GET /hello HTTP/1.1\r\nHost: crowd\r\nConnection: close\r\n\r\n")
				);
				let answer = "";
				socket.setEncoding("utf8");
				socket.on("data", chunk => (answer += chunk));
				socket.on("close", () => resolve(answer.split("\r\n")[0]));
				socket.on("error", reject);
			});
		try {
			const statusLines = await Promise.all(Array.from({ length: 40 }, halfClosed));
			expect(statusLines).toEqual(Array(40).fill("HTTP/1.1 200 OK"));
			// Every connection has the http server's own socket options, whichever socket took it.
			expect(halfOpen).toEqual(Array(40).fill(true));
		} finally {
			await gateway.broker.stop();
		}
	});

	it("keeps an idle connection for as long as it is told, past Node's default of 5 s", async () => {
		const gateway = crowdGateway(0, 4, 10000);
		await gateway.broker.start();
		const socket = net.connect(gateway.port(), "127.0.0.1");
		let answers = "";
		let closed = false;
		socket.setEncoding("utf8");
		socket.on("data", chunk => (answers += chunk));
		socket.on("close", () => (closed = true));
		const ask = () => socket.write("GET /hello HTTP/1.1\r\nHost: crowd\r\n\r\n");
		try {
			ask();
			// A buyer told to come back in a few seconds finds its connection still open (Node's
			// default would have closed it: 5 s, and a second's grace).
			await sleep(6500);
			expect(closed).toBe(false);
			ask();
			await sleep(300);
			// An answer's body runs straight into the next one's status line.
			expect(answers.match(/HTTP\/1\.1 \d{3} [A-Za-z ]+/g)).toEqual([
				"HTTP/1.1 200 OK",
				"HTTP/1.1 200 OK"
			]);
		} finally {
			socket.destroy();
			await gateway.broker.stop();
		}
	}, 15000);

	it("refuses a port another gateway already listens on, as one socket would", async () => {
		const first = crowdGateway(0, 4);
		await first.broker.start();
		const second = crowdGateway(first.port(), 4);
		// moleculer-web ends the process on a listening error; here it is only recorded.
		const fatal = new Promise<unknown>(resolve => {
			second.broker.fatal = ((_message: string, err: unknown) => resolve(err)) as never;
		});
		void second.broker.start().catch(() => undefined);
		try {
			expect(await fatal).toMatchObject({ code: "EADDRINUSE" });
			expect(listeningSockets(first.port())).toBe(4);
		} finally {
			await second.broker.stop().catch(() => undefined);
			await first.broker.stop();
		}
	});
});
