/**
 * Hostile clients' method tricks and guessed ids or keys (test/integration/hostile-clients.test.ts):
 * nothing runs an action it should not, nothing reads or cancels a booking without its id.
 */
import crypto from "node:crypto";
import { jsonBody } from "./http";
import { ALLOWED_ORIGIN, expectCleanError, PLAY, ROCK, type Hostile } from "./hostile-system";

/** The cases on methods, and on ids and keys. */
export function methodAndIdCases(h: Hostile): void {
	describe("methods", () => {
		it("OPTIONS with Access-Control-Request-Method: DELETE does not cancel the reservation", async () => {
			const res = await h.raw(
				`OPTIONS /reservations/${h.booking._id} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n` +
					"Access-Control-Request-Method: DELETE"
			);
			expect(res.status).toBe(405);
			expectCleanError(h, res.json, 405);
			expect((await h.call("GET", `/reservations/${h.booking._id}`)).body.status).toBe(
				"confirmed"
			);
			expect(await h.state()).toEqual(h.before);
		});

		it("OPTIONS /reserve with Access-Control-Request-Method: POST and a JSON body books nothing", async () => {
			const body = JSON.stringify({ showID: PLAY, name: "Eve", count: 3 });
			const res = await h.raw(
				"OPTIONS /reserve HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" +
					`Access-Control-Request-Method: POST\r\nContent-Type: application/json\r\nContent-Length: ${body.length}`,
				body
			);
			expect(res.status).toBe(405);
			expectCleanError(h, res.json, 405);
			expect(await h.state()).toEqual(h.before);
		});

		it("plain OPTIONS / is 405, not the show list; OPTIONS on an unknown path is 404", async () => {
			const list = await h.call("OPTIONS", "/");
			expect(list.status).toBe(405);
			expect(list.headers.get("allow")).toBe("GET");
			expectCleanError(h, list.body, 405);
			const unknown = await h.call("OPTIONS", "/nothing-here");
			expect(unknown.status).toBe(404);
			expectCleanError(h, unknown.body, 404);
			expect(await h.state()).toEqual(h.before);
		});

		it("a CORS preflight from an allowed origin is 204 with CORS headers (405 without CORS_ORIGINS) and runs nothing; another origin is 405", async () => {
			const preflight = {
				"Access-Control-Request-Method": "DELETE",
				"Access-Control-Request-Headers": "content-type"
			};
			const allowed = await h.call("OPTIONS", `/reservations/${h.booking._id}`, {
				headers: { Origin: ALLOWED_ORIGIN, ...preflight }
			});
			if (h.config.env.CORS_ORIGINS) {
				expect(allowed.status).toBe(204);
				expect(allowed.headers.get("access-control-allow-origin")).toBe(ALLOWED_ORIGIN);
				expect(allowed.headers.get("access-control-allow-methods")).toContain("DELETE");
			} else {
				// Without CORS_ORIGINS no origin is allowed: a preflight is an OPTIONS like any other.
				expect(allowed.status).toBe(405);
				expect(allowed.headers.get("access-control-allow-origin")).toBeNull();
			}
			const other = await h.call("OPTIONS", `/reservations/${h.booking._id}`, {
				headers: { Origin: "https://evil.example", ...preflight }
			});
			expect(other.status).toBe(405);
			expectCleanError(h, other.body, 405);
			expect((await h.call("GET", `/reservations/${h.booking._id}`)).body.status).toBe(
				"confirmed"
			);
			expect(await h.state()).toEqual(h.before);
		});

		it("HEAD is refused alike on every route, and PUT, PATCH are 405 with Allow", async () => {
			for (const url of [
				"/",
				`/shows/${ROCK}`,
				`/reservations/${h.booking._id}`,
				"/health",
				"/reserve"
			]) {
				const res = await h.call("HEAD", url);
				expect(res.status).toBe(405);
				expect(res.headers.get("allow")).not.toContain("HEAD");
			}
			for (const method of ["PUT", "PATCH"]) {
				const res = await h.call(
					method,
					"/reserve",
					jsonBody({ showID: ROCK, name: "E", count: 1 })
				);
				expect(res.status).toBe(405);
				expect(res.headers.get("allow")).toBe("POST");
				expectCleanError(h, res.body, 405);
			}
			expect(await h.state()).toEqual(h.before);
		});
	});

	describe("ids and keys", () => {
		it("guessed 128-bit reservation ids read and cancel nothing", async () => {
			for (let i = 0; i < 20; i++) {
				const id = crypto.randomBytes(16).toString("hex");
				for (const method of ["GET", "DELETE"]) {
					const res = await h.call(method, `/reservations/${id}`);
					expect(res.status).toBe(404);
					expectCleanError(h, res.body, 404);
				}
			}
			expect(await h.state()).toEqual(h.before);
		});

		it("an id is never derived from the Idempotency-Key: knowing the key gives no id", async () => {
			const key = `guessable-${crypto.randomBytes(2).toString("hex")}`;
			const first = await h.call(
				"POST",
				"/reserve",
				jsonBody({ showID: PLAY, name: "Kim", count: 1 }, { "Idempotency-Key": key })
			);
			expect(first.status).toBe(201);
			const derived = crypto
				.createHash("sha256")
				.update(`idempotency-key\n${key}`)
				.digest("hex");
			expect(first.body._id).toMatch(/^[0-9a-f]{32}$/);
			expect(first.body._id).not.toBe(derived.slice(0, 32));
			for (const method of ["GET", "DELETE"])
				expect((await h.call(method, `/reservations/${derived.slice(0, 32)}`)).status).toBe(
					404
				);
			expect((await h.call("GET", `/reservations/${first.body._id}`)).body.status).toBe(
				"confirmed"
			);
		});

		it("the same key replays the first answer; the same key with another body is 422 and books nothing", async () => {
			const key = crypto.randomUUID();
			const body = { showID: PLAY, name: "Lee", count: 2 };
			const first = await h.call(
				"POST",
				"/reserve",
				jsonBody(body, { "Idempotency-Key": key })
			);
			expect(first.status).toBe(201);
			const after = await h.state();
			const replay = await h.call(
				"POST",
				"/reserve",
				jsonBody(body, { "Idempotency-Key": key })
			);
			expect(replay.status).toBe(201);
			expect(replay.headers.get("idempotent-replayed")).toBe("true");
			expect(replay.body).toEqual(first.body);
			const reused = await h.call(
				"POST",
				"/reserve",
				jsonBody({ ...body, count: 3 }, { "Idempotency-Key": key })
			);
			expect(reused.status).toBe(422);
			expectCleanError(h, reused.body, 422);
			expect(await h.state()).toEqual(after);
		});
	});
}
