/**
 * The address a request comes from, for the checkout rate limit and the per-client cap on event
 * streams. Behind `TRUST_PROXY=N` proxies it is the entry of `X-Forwarded-For` that the outermost
 * trusted proxy wrote, counted from the right as Express's `trust proxy` counts hops: every proxy
 * appends the address it was called from, so entries to the left of those are the client's own
 * writing and prove nothing. Without TRUST_PROXY it is the socket's address.
 */
import type { IncomingMessage } from "node:http";
import { appConfig } from "../common/config";

/**
 * The request's addresses from nearest to farthest: the socket's, then `X-Forwarded-For` from the
 * right. (Node joins repeated X-Forwarded-For headers with ", ", in the order they came.)
 */
function addressChain(req: IncomingMessage): string[] {
	const forwarded = req.headers["x-forwarded-for"];
	const listed = (Array.isArray(forwarded) ? forwarded.join(",") : (forwarded ?? ""))
		.split(",")
		.map(entry => entry.trim())
		.filter(Boolean);
	return [req.socket.remoteAddress ?? "unknown", ...listed.reverse()];
}

/**
 * With `trustedHops` proxies in front, the socket and the last `trustedHops - 1` entries are
 * trusted proxies, and the entry before them is the client. A shorter chain came past fewer
 * proxies than configured: its farthest address is the best there is.
 */
export function clientAddressBehind(req: IncomingMessage, trustedHops: number): string {
	const chain = addressChain(req);
	return chain[Math.min(trustedHops, chain.length - 1)];
}

export function clientAddress(req: IncomingMessage): string {
	return clientAddressBehind(req, appConfig.trustProxy);
}
