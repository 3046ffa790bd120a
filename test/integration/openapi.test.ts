/**
 * GET /openapi.json documents exactly the public routes of docs/api.md, and the real
 * system answers as documented: every documented status of every route is provoked over HTTP and
 * its body (and documented headers) validated against the document's schemas with ajv.
 */
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import Ajv from "ajv";
import type { ValidateFunction } from "ajv";
import type { OpenApiDocument } from "../../lib/gateway/openapi-types";
import { freePort } from "../../scripts/servers";
import { httpCall, jsonBody, type Answer } from "../support/http";
import { openEvents } from "../support/sse";
import { brokenlyEncoded, rawRequest } from "../support/raw-http";
import { startEmbedded, systemNode, type NodeHandle } from "../support/system";

const ROCK = "5b805a00297ae6047030f2e0";
const PLAY = "5b805a570cee1505a52bc75d";
const RALLY = "5b805a790cee1505a52bc75e";
const UNKNOWN_SHOW = "5b805a790cee1505a52bc7ff";
const UNKNOWN_RESERVATION = "0123456789abcdef0123456789abcdef";
const MAX_TICKETS = 6;

/** The public routes of docs/api.md, in OpenAPI's path syntax. */
const CONTRACT_ROUTES = [
	"GET /",
	"GET /shows/{id}",
	"POST /reserve",
	"GET /reservations/{id}",
	"DELETE /reservations/{id}",
	"GET /health",
	"GET /openapi.json",
	"GET /events",
	"GET /box-office/",
	"GET /box-office/{asset}"
];

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** Reservations in states no HTTP request reaches quickly, written into the store before start. */
const FAILED = "seededFailed0001";
const PENDING = "seededPending001";

let system: Awaited<ReturnType<typeof startEmbedded>>;
let doc: OpenApiDocument;
let ajv: Ajv;
/** `METHOD /template STATUS` of every answer checked against the document. */
const exercised = new Set<string>();

const pointerPart = (part: string) => part.replace(/~/g, "~0").replace(/\//g, "~1");

/** Follows `$ref`s inside the document; returns the object and the JSON pointer where it lives. */
function resolve(value: any, pointer: string): { value: any; pointer: string } {
	let at = value;
	let where = pointer;
	while (at && typeof at.$ref === "string") {
		where = at.$ref;
		at = where
			.slice(2)
			.split("/")
			.map(p => p.replace(/~1/g, "/").replace(/~0/g, "~"))
			.reduce((node: any, key) => node?.[key], doc);
		if (at === undefined) throw new Error(`unresolvable $ref ${where}`);
	}
	return { value: at, pointer: where };
}

function validator(pointer: string): ValidateFunction {
	const validate = ajv.getSchema(`openapi.json${pointer}`);
	if (!validate) throw new Error(`no schema at ${pointer}`);
	return validate;
}

function expectValid(pointer: string, data: unknown, what: string) {
	const validate = validator(pointer);
	const valid = validate(data);
	expect({ what, data, errors: valid ? null : validate.errors }).toEqual({
		what,
		data,
		errors: null
	});
}

/** Checks an answer against the document: a documented status, its headers and its body. */
function expectDocumented(method: string, template: string, answer: Answer) {
	const route = `${method} ${template}`;
	const operation = doc.paths[template]?.[method.toLowerCase() as "get" | "post" | "delete"];
	expect({ route, documented: Boolean(operation) }).toEqual({ route, documented: true });
	const statuses = Object.keys(operation!.responses);
	expect({ route, status: answer.status, documented: statuses }).toEqual({
		route,
		status: answer.status,
		documented: expect.arrayContaining([String(answer.status)])
	});
	const { value: response, pointer } = resolve(
		operation!.responses[String(answer.status)],
		`#/paths/${pointerPart(template)}/${method.toLowerCase()}/responses/${answer.status}`
	);
	for (const [name, headerRef] of Object.entries(response.headers ?? {})) {
		const { value: header, pointer: headerPointer } = resolve(
			headerRef,
			`${pointer}/headers/${pointerPart(name)}`
		);
		const raw = answer.headers.get(name);
		if (header.required)
			expect({ route, header: name, present: raw !== null }).toEqual({
				route,
				header: name,
				present: true
			});
		if (raw === null) continue;
		const schema = resolve(header.schema, `${headerPointer}/schema`);
		const value = schema.value.type === "integer" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
		expectValid(schema.pointer, value, `${route} ${answer.status} header ${name}`);
	}
	if (response.content) {
		const type = (answer.headers.get("content-type") ?? "").split(";")[0].trim();
		const types = Object.keys(response.content);
		expect({ route, type, documented: types }).toEqual({
			route,
			type,
			documented: expect.arrayContaining([type])
		});
		// The page and the event stream are text; everything else answers JSON.
		if (type !== "application/json") {
			exercised.add(`${route} ${answer.status}`);
			return;
		}
		const schema = resolve(
			response.content["application/json"].schema,
			`${pointer}/content/application~1json/schema`
		);
		expectValid(schema.pointer, answer.body, `${route} ${answer.status} body`);
	}
	exercised.add(`${route} ${answer.status}`);
}

/** Calls the main system and checks the answer against the document. */
async function exercise(
	method: string,
	template: string,
	url: string,
	init: RequestInit = {},
	baseUrl = system.baseUrl
): Promise<Answer> {
	const answer = await httpCall(baseUrl, method, url, init);
	expectDocumented(method, template, answer);
	return answer;
}

/** A failed and a pending reservation, written as the reservations service stores them. */
function seedReservations(dataDir: string) {
	const folder = path.join(dataDir, "reservations");
	fs.mkdirSync(folder, { recursive: true });
	const now = Date.now();
	const booking = (id: string, label: string) =>
		JSON.stringify({
			_id: id,
			showID: ROCK,
			name: `Seeded ${label}`,
			guests: 1,
			fingerprint: "seeded",
			createdAt: now
		});
	fs.writeFileSync(
		path.join(folder, "reservations.db"),
		`${booking(FAILED, "failed")}\n${booking(PENDING, "pending")}\n`
	);
	const outcome = { _id: `${FAILED}:outcome`, reservation: FAILED, status: "failed", at: now };
	fs.writeFileSync(path.join(folder, "reservation_states.db"), `${JSON.stringify(outcome)}\n`);
}

beforeAll(async () => {
	const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "tickets-openapi-"));
	seedReservations(dataDir);
	system = await startEmbedded({
		DATA_DIR: dataDir,
		MAX_TICKETS_PER_ORDER: String(MAX_TICKETS),
		HOLD_TTL: "3600",
		BODY_TIMEOUT_MS: "1000"
	});
	const res = await fetch(`${system.baseUrl}/openapi.json`);
	expect(res.status).toBe(200);
	doc = (await res.json()) as OpenApiDocument;
	ajv = new Ajv({ strict: false, allErrors: true });
	ajv.addSchema(doc as object, "openapi.json");
});

afterAll(async () => {
	await system?.node.stop();
});

describe("the document", () => {
	it("is OpenAPI 3.0.3 of exactly the contract's public routes", () => {
		expect(doc.openapi).toBe("3.0.3");
		const documented = Object.entries(doc.paths).flatMap(([route, item]) =>
			Object.keys(item)
				.filter(key => HTTP_METHODS.includes(key))
				.map(method => `${method.toUpperCase()} ${route}`)
		);
		expect(documented.sort()).toEqual([...CONTRACT_ROUTES].sort());
	});

	it("is served as JSON and matches its own description of itself", async () => {
		await exercise("GET", "/openapi.json", "/openapi.json");
	});

	it("resolves every $ref, and gives every operation a unique operationId", () => {
		const refs: string[] = [];
		const walk = (node: unknown) => {
			if (Array.isArray(node)) node.forEach(walk);
			else if (node && typeof node === "object")
				for (const [key, value] of Object.entries(node))
					if (key === "$ref") refs.push(value as string);
					else walk(value);
		};
		walk(doc);
		expect(refs.length).toBeGreaterThan(0);
		for (const ref of refs) expect(() => resolve({ $ref: ref }, ref)).not.toThrow();
		const ids = Object.values(doc.paths).flatMap(item =>
			Object.values(item).map(op => op.operationId)
		);
		expect(new Set(ids).size).toBe(CONTRACT_ROUTES.length);
	});

	it("states the configured per-order maximum (MAX_TICKETS_PER_ORDER)", () => {
		expect(doc.components.schemas.ReserveRequest.properties?.count.maximum).toBe(MAX_TICKETS);
	});

	it("documents Retry-After on every 429 and 503", () => {
		for (const [route, item] of Object.entries(doc.paths))
			for (const [method, op] of Object.entries(item))
				for (const status of ["429", "503"]) {
					if (!op.responses[status]) continue;
					const { value } = resolve(op.responses[status], "");
					expect({
						method,
						route,
						status,
						headers: Object.keys(value.headers ?? {})
					}).toEqual({
						method,
						route,
						status,
						headers: expect.arrayContaining(["Retry-After"])
					});
				}
	});
});

describe("reads answer as documented", () => {
	it("GET /: the shows, whole and paged; 422 for a bad page", async () => {
		const all = await exercise("GET", "/", "/");
		expect(all.body.map((s: { _id: string }) => s._id)).toEqual([ROCK, PLAY, RALLY]);
		const page = await exercise("GET", "/", "/?limit=1&offset=1");
		expect(page.body.map((s: { _id: string }) => s._id)).toEqual([PLAY]);
		expect(page.headers.get("x-total-count")).toBe("3");
		expect(page.headers.get("link")).toContain("offset=2");
		// Only plain digits are integers in a query: not "", "1e0", "0x1" or "+1".
		const bad = ["limit=0", "limit=1001", "offset=-1", "limit=two", "offset=", "limit=1e0"];
		for (const query of [...bad, "offset=0x1", "limit=%2B1", "offset=1&offset=2"]) {
			const { status } = await exercise("GET", "/", `/?${query}`);
			expect({ query, status }).toEqual({ query, status: 422 });
		}
	});

	it("GET /shows/{id}: 200, 404 unknown or malformed, 422 for an overlong id", async () => {
		expect((await exercise("GET", "/shows/{id}", `/shows/${ROCK}`)).body._id).toBe(ROCK);
		expect((await exercise("GET", "/shows/{id}", `/shows/${UNKNOWN_SHOW}`)).status).toBe(404);
		expect((await exercise("GET", "/shows/{id}", "/shows/nope")).status).toBe(404);
		expect((await exercise("GET", "/shows/{id}", `/shows/${"a".repeat(200)}`)).status).toBe(
			422
		);
	});

	it("GET /reservations/{id}: 404 unknown, 422 overlong; pending and failed ones too", async () => {
		const unknown = `/reservations/${UNKNOWN_RESERVATION}`;
		expect((await exercise("GET", "/reservations/{id}", unknown)).status).toBe(404);
		expect((await exercise("GET", "/reservations/{id}", "/reservations/x")).status).toBe(404);
		const overlong = `/reservations/${"a".repeat(200)}`;
		expect((await exercise("GET", "/reservations/{id}", overlong)).status).toBe(422);
		const failed = await exercise("GET", "/reservations/{id}", `/reservations/${FAILED}`);
		expect(failed.body.status).toBe("failed");
		const pending = await exercise("GET", "/reservations/{id}", `/reservations/${PENDING}`);
		expect(pending.body.status).toBe("pending");
	});

	it("GET /health: 200 ok", async () => {
		expect((await exercise("GET", "/health", "/health")).body.status).toBe("ok");
	});
});

describe("POST /reserve answers as documented", () => {
	/** Also checks that the document's request schema agrees with the gateway about the body. */
	async function reserve(body: unknown, headers: Record<string, string> = {}) {
		const answer = await exercise("POST", "/reserve", "/reserve", jsonBody(body, headers));
		const refused = answer.status === 422 && answer.body.type !== "IDEMPOTENCY_KEY_REUSED";
		const judged = [201, 404, 409, 422].includes(answer.status);
		if (judged && answer.body.type !== "INVALID_IDEMPOTENCY_KEY") {
			const validate = validator("#/components/schemas/ReserveRequest");
			expect({ body, status: answer.status, schemaValid: validate(body) }).toEqual({
				body,
				status: answer.status,
				schemaValid: !refused
			});
		}
		return answer;
	}

	it("201 from JSON and from a form, with Location; the reservation reads back", async () => {
		const booked = await reserve({ name: "Ann", count: 2, showID: ROCK });
		expect(booked.status).toBe(201);
		expect(booked.headers.get("location")).toBe(`/reservations/${booked.body._id}`);
		const read = await exercise(
			"GET",
			"/reservations/{id}",
			`/reservations/${booked.body._id}`
		);
		expect(read.body).toMatchObject({ _id: booked.body._id, status: "confirmed" });

		const form = await exercise("POST", "/reserve", "/reserve", {
			body: `name=Eve&count=${MAX_TICKETS}&showID=${PLAY}`,
			headers: { "content-type": "application/x-www-form-urlencoded" }
		});
		expect(form.status).toBe(201);
		expect(form.body).toMatchObject({ name: "Eve", guests: MAX_TICKETS });

		const padded = await reserve({ name: ` \t${"B".repeat(100)}\n `, count: 1, showID: ROCK });
		expect(padded.status).toBe(201);
		expect(padded.body.name).toBe("B".repeat(100));
	});

	it("counts a name's length in characters, as the document (JSON Schema) does", async () => {
		const name = "\u{1F3AD}".repeat(100);
		const booked = await reserve({ name, count: 1, showID: ROCK });
		expect({ status: booked.status, name: booked.body.name }).toEqual({ status: 201, name });
	});

	it("replays with Idempotency-Key, also after the booking was canceled", async () => {
		const key = { "Idempotency-Key": "openapi-test-1" };
		const body = { name: "Dan", count: 1, showID: ROCK };
		const first = await reserve(body, key);
		expect(first.status).toBe(201);
		const replay = await reserve(body, key);
		expect(replay.status).toBe(201);
		expect(replay.headers.get("idempotent-replayed")).toBe("true");
		expect(replay.body).toEqual(first.body);

		const url = `/reservations/${first.body._id}`;
		expect((await exercise("DELETE", "/reservations/{id}", url)).body.canceled).toBe(true);
		const afterCancel = await reserve(body, key);
		expect(afterCancel.status).toBe(201);
		expect(afterCancel.body.status).toBe("canceled");
	});

	it("404 for an unknown show, 409 when sold out", async () => {
		expect((await reserve({ name: "A", count: 1, showID: UNKNOWN_SHOW })).status).toBe(404);
		const soldOut = await reserve({ name: "A", count: 2, showID: RALLY });
		expect(soldOut.status).toBe(409);
		expect(soldOut.body.type).toBe("NOT_ENOUGH_SEATS");
	});

	it("413 for a body over the limit, 415 for other content types", async () => {
		const big = await reserve({ name: "A".repeat(64 * 1024), count: 1, showID: ROCK });
		expect(big.status).toBe(413);
		for (const type of ["text/plain", "multipart/form-data; boundary=x", null]) {
			const answer = await exercise("POST", "/reserve", "/reserve", {
				body: "name=A",
				headers: type ? { "content-type": type } : {}
			});
			expect(answer.status).toBe(415);
		}
	});

	it("400 for a broken Content-Encoding, 408 for a body that does not arrive in time", async () => {
		const broken = await exercise("POST", "/reserve", "/reserve", {
			body: brokenlyEncoded("gzip", JSON.stringify({ name: "A", count: 1, showID: ROCK })),
			headers: { "content-type": "application/json", "content-encoding": "gzip" }
		});
		expect(broken.status).toBe(400);
		const slow = await rawRequest(
			system.port,
			"POST /reserve HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100",
			"{",
			{ trickleMs: 200 }
		);
		expect(slow.status).toBe(408);
		expectDocumented("POST", "/reserve", {
			status: slow.status,
			body: slow.json,
			headers: new Headers(slow.headers)
		});
	});

	it("422 for invalid input of every kind", async () => {
		const invalid: unknown[] = [
			{ count: 1, showID: ROCK },
			{ name: " \t", count: 1, showID: ROCK },
			{ name: "A".repeat(101), count: 1, showID: ROCK },
			{ name: "\u{1F3AD}".repeat(101), count: 1, showID: ROCK },
			{ name: "A", count: 0, showID: ROCK },
			{ name: "A", count: MAX_TICKETS + 1, showID: ROCK },
			{ name: "A", count: 1.5, showID: ROCK },
			{ name: "A", count: "1", showID: ROCK },
			{ name: "A", count: 1, showID: "123" },
			[1, 2]
		];
		for (const body of invalid)
			expect({ body, status: (await reserve(body)).status }).toEqual({
				body,
				status: 422
			});
		const malformed = await exercise("POST", "/reserve", "/reserve", {
			body: "{name:",
			headers: { "content-type": "application/json" }
		});
		expect(malformed.status).toBe(422);
		const form = await exercise("POST", "/reserve", "/reserve", {
			body: `name=A&count=two&showID=${ROCK}`,
			headers: { "content-type": "application/x-www-form-urlencoded" }
		});
		expect(form.status).toBe(422);
		for (const key of ["x".repeat(256), "has space", "naïve"]) {
			const answer = await reserve(
				{ name: "A", count: 1, showID: ROCK },
				{
					"Idempotency-Key": key
				}
			);
			expect({ key, status: answer.status }).toEqual({ key, status: 422 });
		}
		const key = { "Idempotency-Key": "openapi-test-reuse" };
		expect((await reserve({ name: "B", count: 1, showID: ROCK }, key)).status).toBe(201);
		const reused = await reserve({ name: "B", count: 2, showID: ROCK }, key);
		expect(reused.status).toBe(422);
		expect(reused.body.type).toBe("IDEMPOTENCY_KEY_REUSED");
	});
});

describe("DELETE /reservations/{id} answers as documented", () => {
	it("200 however often it is repeated", async () => {
		const booked = await exercise(
			"POST",
			"/reserve",
			"/reserve",
			jsonBody({ name: "Cat", count: 1, showID: ROCK })
		);
		const url = `/reservations/${booked.body._id}`;
		for (let i = 0; i < 2; i++) {
			const answer = await exercise("DELETE", "/reservations/{id}", url);
			expect(answer.status).toBe(200);
			expect(answer.body).toMatchObject({ canceled: true, _id: booked.body._id });
		}
		const read = await exercise("GET", "/reservations/{id}", url);
		expect(read.body.status).toBe("canceled");
	});

	it("404 unknown, 422 overlong, 409 for a pending or failed reservation", async () => {
		const del = (id: string) => exercise("DELETE", "/reservations/{id}", `/reservations/${id}`);
		expect((await del(UNKNOWN_RESERVATION)).status).toBe(404);
		expect((await del("a".repeat(200))).status).toBe(422);
		for (const id of [FAILED, PENDING]) {
			const answer = await del(id);
			expect(answer.status).toBe(409);
			expect(answer.body.type).toBe("RESERVATION_NOT_CANCELABLE");
		}
	});
});

describe("the event stream and the box-office page answer as documented", () => {
	/** A conditional GET; not fetch(), which marks it `Cache-Control: no-cache` and so skips 304. */
	function getIfNoneMatch(url: string, etag: string): Promise<Answer> {
		return new Promise((resolve, reject) =>
			http
				.get(`${system.baseUrl}${url}`, { headers: { "If-None-Match": etag } }, res => {
					res.resume();
					const headers = new Headers();
					for (const [name, value] of Object.entries(res.headers))
						if (typeof value === "string") headers.set(name, value);
					resolve({ status: res.statusCode!, body: "", headers });
				})
				.on("error", reject)
		);
	}

	it("GET /events: 200 text/event-stream, opening with a snapshot", async () => {
		const reader = await openEvents(system.baseUrl);
		try {
			expectDocumented("GET", "/events", {
				status: reader.status,
				body: "",
				headers: reader.headers
			});
			const [snapshot] = await reader.waitFor(f => f.event === "snapshot");
			const data = JSON.parse(snapshot.data!);
			expect(data.shows.length).toBe(data.total);
			for (const show of data.shows)
				expectValid("#/components/schemas/Show", show, "snapshot show");
		} finally {
			reader.close();
		}
	});

	it("GET /box-office/ and its assets: 200, 304 with If-None-Match, 404 for anything else", async () => {
		const page = await exercise("GET", "/box-office/", "/box-office/");
		expect(page.status).toBe(200);
		const etag = page.headers.get("etag")!;
		expectDocumented("GET", "/box-office/", await getIfNoneMatch("/box-office/", etag));
		const assets = doc.paths["/box-office/{asset}"].get!.parameters![0].schema!.enum!;
		for (const asset of assets) {
			const answer = await exercise("GET", "/box-office/{asset}", `/box-office/${asset}`);
			expect({ asset, status: answer.status }).toEqual({ asset, status: 200 });
		}
		const script = await exercise("GET", "/box-office/{asset}", "/box-office/box-office.js");
		const unchanged = await getIfNoneMatch(
			"/box-office/box-office.js",
			script.headers.get("etag")!
		);
		expectDocumented("GET", "/box-office/{asset}", unchanged);
		expect(unchanged.status).toBe(304);
		const missing = await exercise("GET", "/box-office/{asset}", "/box-office/nope.js");
		expect(missing.status).toBe(404);
	});
});

describe("a gateway without its services answers as documented", () => {
	let gateway: NodeHandle;
	let baseUrl: string;

	beforeAll(async () => {
		const port = await freePort();
		baseUrl = `http://127.0.0.1:${port}`;
		gateway = systemNode(
			{ services: "api" },
			{
				PORT: String(port),
				DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), "tickets-openapi-")),
				RATE_LIMIT: "1"
			}
		);
		await gateway.start();
		const deadline = Date.now() + 30000;
		for (;;) {
			const up = await fetch(`${baseUrl}/openapi.json`).then(
				r => r.status === 200,
				() => false
			);
			if (up) break;
			if (Date.now() > deadline) throw new Error(`gateway not up:\n${gateway.output()}`);
			await new Promise(r => setTimeout(r, 200));
		}
	});

	afterAll(async () => {
		await gateway?.stop();
	});

	const on = (method: string, template: string, url: string, init: RequestInit = {}) =>
		exercise(method, template, url, init, baseUrl);

	it("503 with Retry-After for every route that needs a service", async () => {
		const health = await on("GET", "/health", "/health");
		expect(health.status).toBe(503);
		expect(health.body.status).toBe("unavailable");
		expect((await on("GET", "/", "/")).status).toBe(503);
		expect((await on("GET", "/shows/{id}", `/shows/${ROCK}`)).status).toBe(503);
		const reservation = `/reservations/${UNKNOWN_RESERVATION}`;
		expect((await on("GET", "/reservations/{id}", reservation)).status).toBe(503);
		expect((await on("DELETE", "/reservations/{id}", reservation)).status).toBe(503);
		const checkout = jsonBody({ name: "A", count: 1, showID: ROCK });
		expect((await on("POST", "/reserve", "/reserve", checkout)).status).toBe(503);
		// No shows to snapshot: the stream is refused rather than opened empty.
		expect((await on("GET", "/events", "/events")).status).toBe(503);
	});

	it("429 with Retry-After past the rate limit (RATE_LIMIT=1)", async () => {
		const checkout = jsonBody({ name: "A", count: 1, showID: ROCK });
		const answer = await on("POST", "/reserve", "/reserve", checkout);
		expect(answer.status).toBe(429);
	});
});

describe("nothing undocumented answers", () => {
	const closed: [string, string][] = [
		["GET", "/~node/actions"],
		["GET", "/~node/health"],
		["GET", "/$node/list"],
		["GET", "/$node/services"],
		["GET", "/api/shows"],
		["GET", "/api/shows/list"],
		["POST", "/api/reservations/create"],
		["PUT", "/hold-seats"],
		["POST", "/hold-seats"],
		["GET", "/reserve"],
		["PUT", "/reserve"],
		["POST", "/"],
		["DELETE", "/"],
		["PUT", `/shows/${ROCK}`],
		["DELETE", `/shows/${ROCK}`],
		["POST", `/reservations/${UNKNOWN_RESERVATION}`],
		["PATCH", `/reservations/${UNKNOWN_RESERVATION}`],
		["POST", "/health"],
		["GET", "/openapi.yaml"],
		["GET", "/docs"],
		["POST", "/events"],
		["GET", "/events/1"],
		["DELETE", "/box-office/"],
		["POST", "/box-office/index.html"],
		["GET", "/box-office/.hidden"],
		["GET", "/box-office/sub/index.html"],
		["GET", "/box-officex"]
	];

	it.each(closed)(
		"%s %s answers 404 (405 on a documented path) with the error shape",
		async (method, url) => {
			const answer = await httpCall(system.baseUrl, method, url);
			// A documented path with a method it does not take is 405; the box office's GET serves
			// files, so an unknown one there is 404.
			const documented =
				/^\/(reserve|health|events|shows\/.+|reservations\/.+|box-office(\/[^/]*)?)?$/.test(
					url
				) && !(method === "GET" && url.startsWith("/box-office"));
			expect(answer.status).toBe(documented ? 405 : 404);
			if (documented) expect(answer.headers.get("allow")).toBeTruthy();
			expectValid("#/components/schemas/Error", answer.body, `${method} ${url}`);
		}
	);
});

describe("coverage", () => {
	it("provoked every documented status of every documented route", () => {
		const documented = Object.entries(doc.paths).flatMap(([route, item]) =>
			Object.entries(item).flatMap(([method, op]) =>
				Object.keys(op.responses).map(
					status => `${method.toUpperCase()} ${route} ${status}`
				)
			)
		);
		expect(documented.filter(r => !exercised.has(r))).toEqual([]);
	});
});
