/**
 * Answers for requests Node refuses before they become requests (unparsable, headers too large,
 * too slow, an unknown `Expect`) and for CONNECT, which Node hands over as a bare socket: JSON
 * errors like every other (lib/gateway/error-answers.ts), after which the connection is closed.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { sendErrorAnswer, socketErrorAnswer } from "./error-answers";
import { httpRefusal } from "./http-errors";
import { responseOnSocket } from "./moleculer-web-internals";

/** Node's names for the requests it refuses before they reach us, and our answer to each. */
const PARSER_REFUSALS: Record<string, () => Error> = {
	HPE_HEADER_OVERFLOW: () =>
		httpRefusal(431, "HEADERS_TOO_LARGE", "request headers are too large"),
	ERR_HTTP_REQUEST_TIMEOUT: () =>
		httpRefusal(408, "REQUEST_TIMEOUT", "the request did not arrive in time")
};
const malformed = () => httpRefusal(400, "BAD_REQUEST", "the request is malformed");

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
	socket.end(socketErrorAnswer((PARSER_REFUSALS[err.code ?? ""] ?? malformed)()));
}

/** CONNECT (Node hands it over as a raw socket): 405 like any method no route lists. */
export function refuseConnect(_req: IncomingMessage, socket: Duplex): void {
	socket.end(
		socketErrorAnswer(httpRefusal(405, "METHOD_NOT_ALLOWED", "CONNECT is not served here"))
	);
}

/** An `Expect` other than 100-continue (Node's own answer is an empty 417). */
export function refuseExpectation(req: IncomingMessage, res: ServerResponse): void {
	res.setHeader("Connection", "close");
	sendErrorAnswer(
		req,
		res,
		httpRefusal(
			417,
			"EXPECTATION_FAILED",
			"the Expect header names an expectation this server does not meet"
		)
	);
	req.resume();
}
