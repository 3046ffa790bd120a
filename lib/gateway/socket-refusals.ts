/**
 * Answers for requests Node refuses before they become requests (unparsable, headers too large,
 * too slow, an unknown `Expect`) and for CONNECT, which Node hands over as a bare socket: JSON errors like every other,
 * written straight to the socket, which is then closed.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { setSecurityHeaders, writeJson } from "./http-guards";
import { responseOnSocket } from "./moleculer-web-internals";

interface Refusal {
	code: number;
	name: string;
	message: string;
	type: string;
}

/** Node's names for the requests it refuses before they reach us, and our answer to each. */
const PARSER_REFUSALS: Record<
	string,
	{ code: number; name: string; message: string; type: string }
> = {
	HPE_HEADER_OVERFLOW: {
		code: 431,
		name: "RequestHeaderFieldsTooLarge",
		message: "request headers are too large",
		type: "HEADERS_TOO_LARGE"
	},
	ERR_HTTP_REQUEST_TIMEOUT: {
		code: 408,
		name: "RequestTimeout",
		message: "the request did not arrive in time",
		type: "REQUEST_TIMEOUT"
	}
};
const MALFORMED = {
	code: 400,
	name: "BadRequest",
	message: "the request is malformed",
	type: "BAD_REQUEST"
};

/**
 * The server's 'clientError': Node could not parse the request (or it came too slowly). Answer in
 * JSON like every other error when the socket still takes an answer.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
	const inFlight = responseOnSocket(socket);
	if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) {
		socket.destroy();
		return;
	}
	endWithError(socket, PARSER_REFUSALS[err.code ?? ""] ?? MALFORMED);
}

/** CONNECT (Node hands it over as a raw socket): 405 like any method no route lists. */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
	endWithError(socket, {
		code: 405,
		name: "MethodNotAllowed",
		message: "CONNECT is not served here",
		type: "METHOD_NOT_ALLOWED"
	});
}

/** A whole HTTP answer written to a socket that has no response object, then the socket ended. */
function endWithError(socket: Duplex, refusal: Refusal) {
	const body = JSON.stringify(refusal);
	socket.end(
		`HTTP/1.1 ${refusal.code} ${STATUS_CODES[refusal.code]}\r\n` +
			"Content-Type: application/json; charset=utf-8\r\n" +
			`Content-Length: ${Buffer.byteLength(body)}\r\n` +
			"X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n" +
			body
	);
}

/** An `Expect` other than 100-continue (Node's own answer is an empty 417). */
export function refuseExpectation(req: IncomingMessage, res: ServerResponse): void {
	setSecurityHeaders(res);
	res.setHeader("Connection", "close");
	writeJson(
		res,
		417,
		JSON.stringify({
			name: "ExpectationFailed",
			message: "the Expect header names an expectation this server does not meet",
			code: 417,
			type: "EXPECTATION_FAILED"
		})
	);
	req.resume();
}
