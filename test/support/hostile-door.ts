/**
 * Hostile clients at the gateway's front door (test/integration/hostile-clients.test.ts): origins,
 * conditional headers, paths spelled otherwise than listed, what Node's own parser refuses, dot
 * segments near the page's folder, and the access log. Sent raw where fetch would not send them as they are.
 */
import crypto from "node:crypto";
import { jsonBody } from "./http";
import { ALLOWED_ORIGIN, expectCleanError, PLAY, ROCK, type Hostile } from "./hostile-system";

const FOREIGN_ORIGIN = "https://evil.example";

/** A raw request's head: the request line, then Host and Connection: close, then `headers`. */
const head = (requestLine: string, ...headers: string[]) =>
	[`${requestLine} HTTP/1.1`, "Host: tickets", "Connection: close", ...headers].join("\r\n");

/** Spellings of listed paths that the router would take and the contract does not. */
function misspelledPaths(id: string): string[] {
	return [
		`/RESERVATIONS/${id}`,
		`/Reservations/${id}`,
		`/reservations/${id}/`,
		`/reservations/${id}//`,
		`//reservations/${id}`,
		`/reservations//${id}`,
		`/SHOWS/${ROCK}`,
		`/shows/${ROCK}/`,
		"/HEALTH",
		"/health/",
		"/Reserve",
		"/reserve/",
		"/openapi.JSON",
		"/Box-Office/"
	];
}

/** The cases at the front door. */
export function frontDoorCases(h: Hostile): void {
	const corsSet = () => Boolean(h.config.env.CORS_ORIGINS);

	describe("origins", () => {
		it("a foreign Origin is answered without CORS headers, and every process lives on", async () => {
			const requests: [string, string, RequestInit, number][] = [
				["GET", "/health", {}, 200],
				["GET", `/shows/${ROCK}`, {}, 200],
				["POST", "/reserve", jsonBody({}), 422],
				["DELETE", `/reservations/${crypto.randomBytes(16).toString("hex")}`, {}, 404],
				["OPTIONS", "/reserve", {}, 405]
			];
			// A prefix of a listed origin is another origin (moleculer-web matches by substring).
			for (const origin of [FOREIGN_ORIGIN, ALLOWED_ORIGIN.slice(0, -3), "null"])
				for (const [method, url, init, status] of requests) {
					const headers = { ...(init.headers as object), Origin: origin };
					const res = await h.call(method, url, { ...init, headers });
					expect(res.status).toBe(status);
					expect(res.headers.get("access-control-allow-origin")).toBeNull();
				}
			const listed = await h.call("GET", "/health", { headers: { Origin: ALLOWED_ORIGIN } });
			expect(listed.status).toBe(200);
			expect(listed.headers.get("access-control-allow-origin")).toBe(
				corsSet() ? ALLOWED_ORIGIN : null
			);
			expect(h.system.alive()).toBe(true);
			expect(await h.state()).toEqual(h.before);
		});

		it("the page's own origin books, reads and cancels, listed in CORS_ORIGINS or not", async () => {
			const own = { Origin: h.system.baseUrl };
			const booked = await h.call(
				"POST",
				"/reserve",
				jsonBody({ showID: PLAY, name: "Own", count: 1 }, own)
			);
			expect(booked.status).toBe(201);
			const read = await h.call("GET", `/reservations/${booked.body._id}`, { headers: own });
			expect(read.body.status).toBe("confirmed");
			const canceled = await h.call("DELETE", `/reservations/${booked.body._id}`, {
				headers: own
			});
			expect(canceled.status).toBe(200);
			expect(canceled.body.canceled).toBe(true);
		});
	});

	describe("conditional requests", () => {
		it("If-None-Match: * never makes a booking or a cancel a 304: both happen and say so", async () => {
			const body = JSON.stringify({ showID: PLAY, name: "Cond", count: 1 });
			const booked = await h.raw(
				head(
					"POST /reserve",
					"If-None-Match: *",
					"Content-Type: application/json",
					`Content-Length: ${body.length}`
				),
				body
			);
			expect(booked.status).toBe(201);
			expect(booked.json).toMatchObject({ success: true, status: "confirmed" });
			const id = booked.json._id as string;
			const read = await h.raw(head(`GET /reservations/${id}`, "If-None-Match: *"));
			expect(read.status).toBe(200);
			expect(read.json).toMatchObject({ _id: id, status: "confirmed" });
			const canceled = await h.raw(head(`DELETE /reservations/${id}`, "If-None-Match: *"));
			expect(canceled.status).toBe(200);
			expect(canceled.json).toMatchObject({ canceled: true, _id: id });
			const after = await h.call("GET", `/reservations/${id}`);
			expect(after.body.status).toBe("canceled");
		});

		it("only GET / and GET /shows/:id answer 304, and with their ETag", async () => {
			for (const url of ["/health", "/openapi.json", `/reservations/${h.booking._id}`]) {
				for (const condition of [
					"If-None-Match: *",
					"If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"
				]) {
					const res = await h.raw(head(`GET ${url}`, condition));
					expect(res.status).toBe(200);
					expect(res.json).not.toBeNull();
				}
			}
			for (const url of ["/", `/shows/${ROCK}`]) {
				const fresh = await h.raw(head(`GET ${url}`));
				expect(fresh.status).toBe(200);
				const etag = fresh.headers.etag;
				expect(etag).toMatch(/^"/);
				for (const condition of [etag, "*"]) {
					const res = await h.raw(head(`GET ${url}`, `If-None-Match: ${condition}`));
					expect(res.status).toBe(304);
					expect(res.headers.etag).toBe(etag);
				}
			}
			expect(await h.state()).toEqual(h.before);
		});
	});

	describe("paths", () => {
		it("a path not spelled exactly as listed is 404 for every method, and touches no booking", async () => {
			for (const url of misspelledPaths(h.booking._id))
				for (const method of ["GET", "DELETE", "PUT", "POST"]) {
					const res = await h.call(
						method,
						url,
						method === "POST" ? jsonBody({ showID: PLAY, name: "Eve", count: 1 }) : {}
					);
					expect([url, method, res.status]).toEqual([url, method, 404]);
					expectCleanError(h, res.body, 404);
				}
			expect((await h.call("GET", `/reservations/${h.booking._id}`)).body.status).toBe(
				"confirmed"
			);
			// The path as listed: a method it does not list is 405, as on every route.
			const put = await h.call("PUT", `/reservations/${h.booking._id}`);
			expect(put.status).toBe(405);
			expect(put.headers.get("allow")).toBe("GET, DELETE");
			expect(await h.state()).toEqual(h.before);
		});
	});

	describe("Node's own refusals", () => {
		it("a request without Host is 400 and an unknown Expect 417, both as JSON", async () => {
			const noHost = await h.raw("GET /health HTTP/1.1\r\nConnection: close");
			expect(noHost.status).toBe(400);
			expectCleanError(h, noHost.json, 400);
			const body = JSON.stringify({ showID: PLAY, name: "Exp", count: 1 });
			const expectation = await h.raw(
				head(
					"POST /reserve",
					"Expect: a-teapot",
					"Content-Type: application/json",
					`Content-Length: ${body.length}`
				),
				body
			);
			expect(expectation.status).toBe(417);
			expectCleanError(h, expectation.json, 417);
			expect(await h.state()).toEqual(h.before);
		});
	});

	describe("the page's folder", () => {
		it.each([
			"/.",
			"/box-office/..",
			"/box-office/.",
			"//x/..",
			"/\\evil.example/..",
			"//box-office/"
		])("GET %s is 404, never a redirect", async url => {
			const res = await h.raw(head(`GET ${url}`));
			expect(res.status).toBe(404);
			expect(res.headers.location).toBeUndefined();
			expectCleanError(h, res.json, 404);
		});
	});

	describe("the access log", () => {
		it("names routes, never a reservation id however the path is spelled, and never echoes an unlisted path", async () => {
			await h.call("GET", `/reservations/${h.booking._id}`);
			for (const url of misspelledPaths(h.booking._id)) await h.call("GET", url);
			await h.call("GET", `/${"x".repeat(5000)}`);
			// The log is buffered (lib/gateway/access-log.ts): wait until the lines are written.
			const lines = () => h.system.gatewayOutput().match(/GET \(unlisted path\) 404/g) ?? [];
			for (let waited = 0; lines().length < 2 && waited < 10000; waited += 50)
				await new Promise(resolve => setTimeout(resolve, 50));
			const log = h.system.gatewayOutput();
			expect(log).toContain("GET /reservations/:id 200");
			expect(log).toContain("GET (unlisted path) 404");
			expect(log).not.toContain(h.booking._id);
			expect(log).not.toContain("xxxxxxxx");
		});
	});
}
