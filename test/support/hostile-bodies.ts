/**
 * Hostile clients' bodies and fields (test/integration/hostile-clients.test.ts): each refused with
 * the right JSON error, and nothing booked or changed.
 */
import { jsonBody } from "./http";
import { brokenlyEncoded } from "./raw-http";
import {
	BODY_TIMEOUT_MS,
	expectCleanError,
	form,
	PLAY,
	rawPost,
	ROCK,
	type Hostile
} from "./hostile-system";

/** The cases on bodies, and on the fields in them. */
export function bodyAndFieldCases(h: Hostile): void {
	describe("bodies", () => {
		const valid = JSON.stringify({ showID: PLAY, name: "Eve", count: 1 });

		it.each([
			[
				"nested as arrays 4000 deep",
				`{"showID":"${PLAY}","name":"Eve","count":${"[".repeat(4000)}${"]".repeat(4000)}}`,
				"JSON_TOO_DEEP"
			],
			["with the booking inside __proto__", `{"__proto__":${valid}}`, "FORBIDDEN_KEY"],
			["with __proto__ escaped", `{"\\u005f_proto__":${valid}}`, "FORBIDDEN_KEY"],
			[
				"with a constructor key",
				`{"constructor":{"prototype":${valid}},"name":"Eve"}`,
				"FORBIDDEN_KEY"
			],
			[
				"with a key twice",
				`{"showID":"${PLAY}","name":"Eve","count":1,"count":2}`,
				"DUPLICATE_KEY"
			],
			["that is not JSON", "{showID: nope", "INVALID_JSON"],
			["that is a JSON array", `[${valid}]`, "INVALID_JSON"],
			[
				"with 0x10 as a number",
				`{"showID":"${PLAY}","name":"Eve","count":0x10}`,
				"INVALID_JSON"
			]
		])("JSON %s is 422 and books nothing", async (_what, body, type) => {
			const res = await h.call("POST", "/reserve", {
				body,
				headers: { "content-type": "application/json" }
			});
			expect(res.status).toBe(422);
			expect(res.body.type).toBe(type);
			expectCleanError(h, res.body, 422);
			expect(await h.state()).toEqual(h.before);
		});

		it.each(["gzip", "deflate", "br"] as const)(
			"a broken %s Content-Encoding is 400",
			async encoding => {
				const res = await h.call("POST", "/reserve", {
					body: brokenlyEncoded(encoding, valid),
					headers: { "content-type": "application/json", "content-encoding": encoding }
				});
				expect(res.status).toBe(400);
				expectCleanError(h, res.body, 400);
				expect(await h.state()).toEqual(h.before);
			}
		);

		it("an unsupported Content-Encoding is 415", async () => {
			const res = await h.call(
				"POST",
				"/reserve",
				jsonBody({ showID: PLAY, name: "E", count: 1 }, { "content-encoding": "xz" })
			);
			expect(res.status).toBe(415);
			expectCleanError(h, res.body, 415);
			expect(await h.state()).toEqual(h.before);
		});

		it("a Content-Length of 10 GB is 413 before any of it is read", async () => {
			const res = await h.raw(rawPost(["Content-Type: application/json"], 10 * 1024 ** 3));
			expect(res.status).toBe(413);
			expectCleanError(h, res.json, 413);
			expect(await h.state()).toEqual(h.before);
		});

		it("a chunked body that goes on past the limit is 413 while it is still coming", async () => {
			const chunk = `${(4096).toString(16)}\r\n${"a".repeat(4096)}\r\n`;
			const res = await h.raw(
				rawPost(["Content-Type: application/json", "Transfer-Encoding: chunked"]),
				chunk,
				{
					trickleMs: 1,
					trickle: chunk
				}
			);
			expect(res.status).toBe(413);
			expectCleanError(h, res.json, 413);
			expect(await h.state()).toEqual(h.before);
		});

		it(`a body that trickles is 408 after BODY_TIMEOUT_MS (${BODY_TIMEOUT_MS} ms here)`, async () => {
			const res = await h.raw(
				rawPost(["Content-Type: application/json"], 200),
				'{"showID":',
				{
					trickleMs: 200
				}
			);
			expect(res.status).toBe(408);
			expectCleanError(h, res.json, 408);
			expect(await h.state()).toEqual(h.before);
		});

		it("Transfer-Encoding: chunked with no body is 422", async () => {
			const res = await h.raw(
				rawPost(["Content-Type: application/json", "Transfer-Encoding: chunked"]),
				"0\r\n\r\n"
			);
			expect(res.status).toBe(422);
			expectCleanError(h, res.json, 422);
			expect(await h.state()).toEqual(h.before);
		});

		it("bytes that are not UTF-8 are 400", async () => {
			const body = Buffer.concat([
				Buffer.from(`{"showID":"${PLAY}","name":"`),
				Buffer.from([0xc3, 0x28, 0xff]),
				Buffer.from('","count":1}')
			]);
			const res = await h.raw(rawPost(["Content-Type: application/json"], body.length), body);
			expect(res.status).toBe(400);
			expectCleanError(h, res.json, 400);
			expect(await h.state()).toEqual(h.before);
		});

		it("a lying Content-Type is 415 or 422, never a booking", async () => {
			const asText = await h.call("POST", "/reserve", {
				body: valid,
				headers: { "content-type": "text/plain" }
			});
			expect(asText.status).toBe(415);
			expectCleanError(h, asText.body, 415);
			const formAsJson = await h.call("POST", "/reserve", {
				body: `showID=${PLAY}&name=Eve&count=1`,
				headers: { "content-type": "application/json" }
			});
			expect(formAsJson.status).toBe(422);
			const jsonAsForm = await h.call("POST", "/reserve", form(valid));
			expect(jsonAsForm.status).toBe(422);
			expectCleanError(h, jsonAsForm.body, 422);
			expect(await h.state()).toEqual(h.before);
		});

		it("headers over Node's limit are 431, an unparsable request 400, CONNECT and TRACE 405, all as JSON", async () => {
			const big = await h.raw(`GET / HTTP/1.1\r\nHost: t\r\nX-Big: ${"a".repeat(20000)}`);
			expect(big.status).toBe(431);
			expectCleanError(h, big.json, 431);
			const garbage = await h.raw("GARBAGE / NOT-HTTP");
			expect(garbage.status).toBe(400);
			expectCleanError(h, garbage.json, 400);
			for (const method of ["CONNECT tickets:443", "TRACE /"]) {
				const res = await h.raw(`${method} HTTP/1.1\r\nHost: t\r\nConnection: close`);
				expect(res.status).toBe(405);
				expectCleanError(h, res.json, 405);
			}
			expect(await h.state()).toEqual(h.before);
		});
	});

	describe("fields", () => {
		it("count means the same as a form or as JSON, and the message says so in the user's terms", async () => {
			const messages = new Set<string>();
			for (const count of ["-1", "1.5", "0", "10abc", "1e1", "0x10", "%2B1"]) {
				const res = await h.call(
					"POST",
					"/reserve",
					form(`showID=${PLAY}&name=Eve&count=${count}`)
				);
				expect(res.status).toBe(422);
				expectCleanError(h, res.body, 422);
				messages.add(res.body.message);
			}
			for (const count of [-1, 1.5, 0, "10abc", "1", [1], { n: 1 }, true]) {
				const res = await h.call(
					"POST",
					"/reserve",
					jsonBody({ showID: PLAY, name: "Eve", count })
				);
				expect(res.status).toBe(422);
				messages.add(res.body.message);
			}
			expect([...messages]).toEqual(["count must be a whole number of tickets, at least 1"]);
			expect(await h.state()).toEqual(h.before);
		});

		it.each([
			[
				"an array as the name",
				{ showID: PLAY, name: ["Eve"], count: 1 },
				/^name must be text/
			],
			[
				"an array as the show id",
				{ showID: [PLAY], name: "Eve", count: 1 },
				/^showID must be/
			],
			[
				"a name with control characters",
				{ showID: PLAY, name: "Eve\u0000\u001b[31m", count: 1 },
				/control characters/
			],
			[
				"a name of 101 characters",
				{ showID: PLAY, name: "é".repeat(101), count: 1 },
				/1 to 100 characters/
			],
			["no fields at all", {}, /^showID is missing/]
		])("%s is 422 with a message naming the field", async (_what, body, message) => {
			const res = await h.call("POST", "/reserve", jsonBody(body));
			expect(res.status).toBe(422);
			expect(res.body.message).toMatch(message);
			expectCleanError(h, res.body, 422);
			expect(await h.state()).toEqual(h.before);
		});

		it("a form with a field twice, a __proto__ field or fields in the query string is 422", async () => {
			for (const body of [
				`showID=${PLAY}&name=Eve&count=1&count=2`,
				`showID=${PLAY}&name=Eve&count=1&__proto__=x`
			]) {
				const res = await h.call("POST", "/reserve", form(body));
				expect(res.status).toBe(422);
				expectCleanError(h, res.body, 422);
			}
			const query = await h.call(
				"POST",
				`/reserve?showID=${PLAY}`,
				jsonBody({ name: "Eve", count: 1 })
			);
			expect(query.status).toBe(422);
			expect(await h.state()).toEqual(h.before);
		});

		it("a show id in upper case names the same show, never 404", async () => {
			const res = await h.call("GET", `/shows/${ROCK.toUpperCase()}`);
			expect(res.status).toBe(200);
			expect(res.body._id).toBe(ROCK);
			const booked = await h.call(
				"POST",
				"/reserve",
				jsonBody({ showID: PLAY.toUpperCase(), name: "Up", count: 1 })
			);
			expect(booked.status).toBe(201);
			expect(booked.body.showID).toBe(PLAY);
		});
	});
}
