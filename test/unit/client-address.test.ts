/**
 * lib/gateway/client-address.ts and TRUST_PROXY: with N trusted proxies the client is the entry N hops from
 * the socket, counted from the right of X-Forwarded-For, so entries a client writes itself (on the
 * left) are never taken; unset, the socket's address.
 */
import type { IncomingMessage } from "node:http";
import { clientAddressBehind } from "../../lib/gateway/client-address";
import { loadAppConfig } from "../../lib/common/config";

const request = (socket: string, forwardedFor?: string | string[]) =>
	({
		socket: { remoteAddress: socket },
		headers: forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor }
	}) as unknown as IncomingMessage;

describe("client address", () => {
	const forged = "203.0.113.9, 198.51.100.7, 10.0.0.5";

	it("is the socket's address when no proxy is trusted, whatever X-Forwarded-For says", () => {
		expect(clientAddressBehind(request("192.0.2.1", forged), 0)).toBe("192.0.2.1");
	});

	it("counts trusted hops from the right of X-Forwarded-For", () => {
		expect(clientAddressBehind(request("10.0.0.1", forged), 1)).toBe("10.0.0.5");
		expect(clientAddressBehind(request("10.0.0.1", forged), 2)).toBe("198.51.100.7");
		expect(clientAddressBehind(request("10.0.0.1", forged), 3)).toBe("203.0.113.9");
	});

	it("takes the farthest address when fewer hops came than are trusted", () => {
		expect(clientAddressBehind(request("10.0.0.1", "198.51.100.7"), 3)).toBe("198.51.100.7");
		expect(clientAddressBehind(request("10.0.0.1"), 2)).toBe("10.0.0.1");
	});

	it("reads repeated X-Forwarded-For headers in order and skips empty entries", () => {
		const repeated = request("10.0.0.1", ["203.0.113.9, ", "198.51.100.7,,10.0.0.5"]);
		expect(clientAddressBehind(repeated, 1)).toBe("10.0.0.5");
		expect(clientAddressBehind(repeated, 2)).toBe("198.51.100.7");
	});
});

describe("TRUST_PROXY", () => {
	const hops = (value?: string) =>
		loadAppConfig(value === undefined ? {} : { TRUST_PROXY: value }).trustProxy;

	it("is a hop count: unset or false is 0, true is 1, a number is that many", () => {
		expect([hops(), hops(""), hops("0"), hops("false")]).toEqual([0, 0, 0, 0]);
		expect([hops("1"), hops("true"), hops("TRUE"), hops("3")]).toEqual([1, 1, 1, 3]);
	});

	it("refuses what is not a hop count", () => {
		for (const bad of ["-1", "1.5", "yes", "33"])
			expect(() => hops(bad)).toThrow(/TRUST_PROXY/);
	});
});
