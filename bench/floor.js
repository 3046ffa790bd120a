/**
 * The machine's floor: what a bare Node `http` server does on this machine, with none of the
 * system's work. The benchmark runs each in its own process, loaded exactly like the system.
 *
 *   bare    GET / answers the same 3-show JSON list that the system answers on a fresh store, and
 *           GET /shows/:id one show of it.
 *   moleculer-web  the framework's own least: a local broker, moleculer-web with one alias, and one
 *           plain action returning the same list. What any gateway built on it costs.
 *   append  POST /reserve and DELETE /reservations/:id append the request to a file with
 *           fs.appendFile (as NeDB persists each write) and answer once the append is done;
 *           GET / as `bare`. The floor for checkout-plus-cancel pairs.
 *   busy    POST /reserve answered 503 at once with a Retry-After of 1 or 2 s, as a full admission
 *           gate answers; GET / as `bare`. It listens as the gateway does (its adapter, from
 *           dist/, with its defaults: 16 sockets sharing the port, a backlog of 4,096), so a
 *           surge's crowd arrives at it as at the system: the floor for refusals in an on-sale
 *           surge (bench/surge.js).
 *
 * Both answer GET /health with 200, so they are waited for like the system.
 *
 *   node bench/floor.js bare|moleculer-web|append|busy [--port N] [--file path]   prints "listening <port>"
 */
"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

/** What GET / of the system answers on a freshly seeded store, byte for byte. */
const SHOWS = [
	{ _id: "5b805a00297ae6047030f2e0", name: "Rock Concert", houseSize: 100, presold: 0 },
	{ _id: "5b805a570cee1505a52bc75d", name: "Shakespeare Play", houseSize: 50, presold: 0 },
	{ _id: "5b805a790cee1505a52bc75e", name: "Monster Truck Rally", houseSize: 500, presold: 500 }
].map(s => ({
	_id: s._id,
	name: s.name,
	houseSize: s.houseSize,
	reserved: s.presold,
	available: s.houseSize - s.presold
}));
const SHOWS_JSON = JSON.stringify(SHOWS);
/** What GET /shows/:id answers, for any well-formed id: one show. */
const SHOW_JSON = JSON.stringify(SHOWS[0]);

const JSON_TYPE = "application/json; charset=utf-8";

function send(res, status, body) {
	res.writeHead(status, {
		"Content-Type": JSON_TYPE,
		"Content-Length": Buffer.byteLength(body)
	});
	res.end(body);
}

function answerRead(req, res) {
	if (req.method === "GET" && req.url === "/") return (send(res, 200, SHOWS_JSON), true);
	if (req.method === "GET" && req.url === "/health")
		return (send(res, 200, '{"status":"ok"}'), true);
	if (req.method === "GET" && /^\/shows\/[0-9a-f]{24}$/.test(req.url ?? ""))
		return (send(res, 200, SHOW_JSON), true);
	return false;
}

/** GET /, GET /shows/:id and /health only. */
function createBareServer() {
	return http.createServer((req, res) => {
		if (!answerRead(req, res)) send(res, 404, '{"code":404}');
	});
}

/** Every checkout refused with 503 and a Retry-After, at once, before its body is read. */
function createBusyServer() {
	const busy = JSON.stringify({
		name: "MoleculerError",
		message: "too many checkouts at once; try again shortly",
		code: 503,
		type: "SERVER_BUSY"
	});
	return http.createServer((req, res) => {
		if (answerRead(req, res)) return;
		req.resume();
		res.setHeader("Retry-After", String(1 + Math.floor(Math.random() * 2)));
		send(res, 503, busy);
	});
}

/** Has `server` listen as the gateway does, through the gateway's own adapter and defaults. */
function listenAsTheGateway(server) {
	const { listenForCrowds } = require("../dist/lib/gateway/moleculer-web-internals");
	const { appConfig } = require("../dist/lib/common/config");
	listenForCrowds(
		{ server },
		{
			backlog: appConfig.listenBacklog,
			sockets: appConfig.listenSockets,
			keepAliveTimeoutMs: appConfig.keepAliveTimeoutMs
		}
	);
}

/** Every checkout and cancel is appended to `file` before it is answered. */
function createAppendServer(file) {
	return http.createServer((req, res) => {
		if (answerRead(req, res)) return;
		if (req.method === "POST" && req.url === "/reserve") {
			const chunks = [];
			req.on("data", c => chunks.push(c));
			req.on("end", () => {
				const text = Buffer.concat(chunks).toString("utf8");
				let body;
				try {
					body = JSON.parse(text);
				} catch {
					return send(res, 422, '{"code":422}');
				}
				const id = crypto.randomBytes(16).toString("hex");
				fs.appendFile(file, `${JSON.stringify({ _id: id, ...body })}\n`, err => {
					if (err) return send(res, 500, '{"code":500}');
					send(
						res,
						201,
						JSON.stringify({
							success: true,
							_id: id,
							showID: body.showID,
							name: body.name,
							guests: body.count,
							status: "confirmed"
						})
					);
				});
			});
			return;
		}
		const cancel =
			req.method === "DELETE" && /^\/reservations\/([A-Za-z0-9_-]{8,64})$/.exec(req.url);
		if (cancel) {
			req.resume();
			const id = cancel[1];
			fs.appendFile(file, `${JSON.stringify({ _id: id, status: "canceled" })}\n`, err => {
				if (err) return send(res, 500, '{"code":500}');
				send(res, 200, JSON.stringify({ canceled: true, _id: id }));
			});
			return;
		}
		req.resume();
		send(res, 404, '{"code":404}');
	});
}

/** moleculer-web's least: one route, one alias, one action that returns the list. */
async function startMoleculerWebFloor(port) {
	const { ServiceBroker } = require("moleculer");
	const ApiGateway = require("moleculer-web");
	const broker = new ServiceBroker({ logger: false, metrics: false, tracing: false });
	broker.createService({
		name: "floor",
		actions: {
			list: () => SHOWS,
			health: () => ({ status: "ok" })
		}
	});
	const gateway = broker.createService({
		name: "api",
		mixins: [ApiGateway],
		settings: {
			port,
			ip: "127.0.0.1",
			logRequest: null,
			logResponse: null,
			routes: [
				{
					path: "",
					mappingPolicy: "restrict",
					aliases: { "GET /": "floor.list", "GET /health": "floor.health" }
				}
			]
		}
	});
	await broker.start();
	return { broker, port: gateway.server.address().port };
}

module.exports = { createBareServer, createAppendServer, createBusyServer, SHOWS, SHOWS_JSON };

if (require.main === module) {
	const args = process.argv.slice(2);
	const mode = args[0];
	const option = name => {
		const at = args.indexOf(name);
		return at >= 0 ? args[at + 1] : undefined;
	};
	const port = Number(option("--port") ?? 0);
	let server;
	if (mode === "moleculer-web") {
		startMoleculerWebFloor(port).then(({ broker, port: listening }) => {
			process.stdout.write(`listening ${listening}\n`);
			const stopBroker = () => broker.stop().then(() => process.exit(0));
			process.on("SIGTERM", stopBroker);
			process.on("SIGINT", stopBroker);
		});
		return;
	}
	if (mode === "bare") server = createBareServer();
	else if (mode === "busy") server = createBusyServer();
	else if (mode === "append") {
		const file =
			option("--file") ??
			path.join(fs.mkdtempSync(path.join(os.tmpdir(), "floor-")), "append.db");
		server = createAppendServer(file);
	} else {
		process.stderr.write(
			"usage: node bench/floor.js bare|moleculer-web|append|busy [--port N] [--file path]\n"
		);
		process.exit(2);
	}
	server.keepAliveTimeout = 30000;
	if (mode === "busy") listenAsTheGateway(server);
	server.listen(port, "127.0.0.1", () => {
		process.stdout.write(`listening ${server.address().port}\n`);
	});
	const stop = () => server.close(() => process.exit(0));
	process.on("SIGTERM", stop);
	process.on("SIGINT", stop);
}
