import { Errors } from "moleculer";
import { describeError, httpRefusal } from "../../lib/gateway/http-errors";
import {
	checkoutFailed,
	holdExpired,
	idempotencyKeyReused,
	notEnoughSeats,
	showNotFound,
	storeConflict,
	tooManyTickets
} from "../../lib/common/errors";

/** An error as body-parser (through http-errors) makes it. */
function bodyParserError(message: string, status: number, type: string) {
	return Object.assign(new Error(message), { status, statusCode: status, expose: true, type });
}

describe("describeError", () => {
	it.each([
		[
			"ServiceNotFoundError",
			new Errors.ServiceNotFoundError({ action: "reservations.create" })
		],
		[
			"ServiceNotAvailableError",
			new Errors.ServiceNotAvailableError({ action: "shows.holdSeats", nodeID: "n1" })
		],
		[
			"RequestTimeoutError",
			new Errors.RequestTimeoutError({ action: "shows.holdSeats", nodeID: "n1" })
		],
		[
			"RequestSkippedError",
			new Errors.RequestSkippedError({ action: "shows.holdSeats", nodeID: "n1" })
		],
		[
			"QueueIsFullError",
			new Errors.QueueIsFullError({ action: "shows.holdSeats", nodeID: "n1" })
		],
		["BrokerDisconnectedError", new Errors.BrokerDisconnectedError("disconnected")],
		["a retryable 503 such as STORE_CONFLICT", storeConflict("5b805a570cee1505a52bc75d")],
		["a plain 503 MoleculerError", new Errors.MoleculerError("down", 503, "DOWN")],
		[
			"a store the service cannot reach (MongoServerSelectionError, as it arrives over NATS)",
			Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:27017"), {
				name: "MongoServerSelectionError",
				code: 500
			})
		],
		[
			"a store connection lost mid-request (MongoNetworkError)",
			Object.assign(new Error("connection 3 to 127.0.0.1:27017 closed"), {
				name: "MongoNetworkError"
			})
		]
	])("%s is 503 with Retry-After", (_what, err) => {
		const answer = describeError(err);
		expect(answer.status).toBe(503);
		expect(answer.retryAfter).toBe(2);
		expect(answer.body).toMatchObject({
			code: 503,
			name: expect.any(String),
			message: expect.any(String)
		});
	});

	it("a ServiceNotFoundError is 503 although its own code is 404", () => {
		const err = new Errors.ServiceNotFoundError({ action: "reservations.create" });
		expect(err.code).toBe(404);
		expect(describeError(err).status).toBe(503);
	});

	it("a ValidationError is 422 and says per field what it must be, without node or action", () => {
		const err = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
			{
				field: "count",
				type: "numberMin",
				actual: -1,
				nodeID: "node-1",
				action: "api.checkout",
				message: "The 'count' field must be greater than or equal to 1."
			},
			{ field: "name", type: "required", nodeID: "node-1", action: "api.checkout" }
		]);
		const answer = describeError(err);
		expect(answer).toEqual({
			status: 422,
			body: {
				name: "ValidationError",
				message:
					"count must be a whole number of tickets, at least 1; " +
					"name is missing: name must be text of 1 to 100 characters, at least one visible, without control characters, line separators or bidi controls",
				code: 422,
				type: "VALIDATION_ERROR",
				data: [
					{
						field: "count",
						message: "count must be a whole number of tickets, at least 1"
					},
					{
						field: "name",
						message:
							"name is missing: name must be text of 1 to 100 characters, at least one visible, without control characters, line separators or bidi controls"
					}
				]
			},
			retryAfter: undefined
		});
		expect(JSON.stringify(answer)).not.toMatch(/node-1|api\.checkout/);
	});

	it("a client error's data loses node ids and action names", () => {
		const err = new Errors.MoleculerClientError("refused", 409, "REFUSED", {
			showID: "x",
			nodeID: "node-1",
			action: "shows.holdSeats"
		});
		expect(describeError(err).body.data).toEqual({ showID: "x" });
	});

	it.each([
		["gzip/deflate", "Z_DATA_ERROR"],
		["brotli", "ERR__ERROR_FORMAT_PADDING_1"]
	])("a broken %s body (zlib's code, wrapped by moleculer-web) is 400", (_what, code) => {
		const err = new Errors.MoleculerError("incorrect header check", code as unknown as number);
		expect(describeError(err)).toMatchObject({ status: 400, body: { code: 400 } });
	});

	it.each([
		["SHOW_NOT_FOUND", showNotFound("5b805a570cee1505a52bc75d"), 404],
		["NOT_ENOUGH_SEATS", notEnoughSeats(7, 3), 409],
		["HOLD_EXPIRED", holdExpired("checkout-1"), 409],
		["CHECKOUT_FAILED", checkoutFailed("checkout-1"), 409],
		["IDEMPOTENCY_KEY_REUSED", idempotencyKeyReused(), 422],
		["TOO_MANY_TICKETS", tooManyTickets(11, 10), 422]
	])("the domain refusal %s keeps its status %i", (_type, err, status) => {
		const answer = describeError(err);
		expect(answer.status).toBe(status);
		expect(answer.body).toMatchObject({
			name: "MoleculerClientError",
			message: err.message,
			code: status,
			type: err.type
		});
		expect(answer.retryAfter).toBeUndefined();
	});

	it("a 429 from the rate limiter says when to retry", () => {
		const err = new Errors.MoleculerClientError(
			"Rate limit exceeded",
			429,
			"RATE_LIMIT_EXCEEDED"
		);
		expect(describeError(err)).toMatchObject({
			status: 429,
			retryAfter: 60,
			body: { code: 429 }
		});
	});

	it.each([401, 403, 405, 418])("another client status (%i) becomes 422, never a 5xx", code => {
		const err = new Errors.MoleculerClientError("bad request", code, "BAD");
		expect(describeError(err)).toMatchObject({ status: 422, body: { code: 422 } });
	});

	it.each([
		[405, "MethodNotAllowed"],
		[408, "RequestTimeout"],
		[417, "ExpectationFailed"],
		[431, "RequestHeaderFieldsTooLarge"]
	])("a refusal the gateway decides itself keeps its status (%i)", (status, name) => {
		expect(describeError(httpRefusal(status, "SOME_TYPE", "no"))).toMatchObject({
			status,
			body: { name, code: status, type: "SOME_TYPE", message: "no" }
		});
	});

	it("tells Moleculer's errors apart by class, not by a name anyone can give an error", () => {
		const lookalike = Object.assign(new Error("not there"), { name: "ServiceNotFoundError" });
		expect(describeError(lookalike).status).toBe(500);
		expect(describeError(new Errors.ServiceNotFoundError({ action: "x.y" })).status).toBe(503);
		expect(describeError(new Errors.QueueIsFullError({ action: "x.y" })).status).toBe(503);
	});

	it("body-parser's entity.too.large is 413", () => {
		const err = bodyParserError("request entity too large", 413, "entity.too.large");
		expect(describeError(err)).toMatchObject({
			status: 413,
			body: { code: 413, name: expect.any(String), message: expect.any(String) }
		});
	});

	it("body-parser's entity.parse.failed (400) is 422", () => {
		const err = bodyParserError("Unexpected end of JSON input", 400, "entity.parse.failed");
		expect(describeError(err)).toMatchObject({
			status: 422,
			body: { code: 422, type: "INVALID_JSON" }
		});
	});

	it.each(["encoding.unsupported", "charset.unsupported"])("body-parser's %s is 415", type => {
		expect(describeError(bodyParserError("unsupported", 415, type))).toMatchObject({
			status: 415,
			body: { code: 415 }
		});
	});

	it("an unknown Error is 500 and leaks neither its message nor its details", () => {
		const err = Object.assign(new Error("connect ECONNREFUSED mongodb://admin:hunter2@db"), {
			data: { password: "hunter2" }
		});
		const answer = describeError(err);
		expect(answer.status).toBe(500);
		expect(answer.retryAfter).toBeUndefined();
		expect(answer.body).toMatchObject({ code: 500, name: "InternalServerError" });
		expect(JSON.stringify(answer)).not.toContain("hunter2");
		expect(JSON.stringify(answer)).not.toContain("ECONNREFUSED");
	});

	it("a non-retryable MoleculerError with code 500 is 500 without its message", () => {
		const err = new Errors.MoleculerError("TypeError: cannot read x of undefined", 500);
		const answer = describeError(err);
		expect(answer.status).toBe(500);
		expect(answer.body.message).not.toContain("TypeError");
	});

	it.each([
		["a string code", Object.assign(new Error("x"), { code: "ECONNRESET" })],
		["null", null],
		["undefined", undefined],
		["a thrown string", "boom"]
	])("%s is 500", (_what, err) => {
		expect(describeError(err)).toMatchObject({ status: 500, body: { code: 500 } });
	});
});
