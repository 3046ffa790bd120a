/**
 * A client for the gateway over real HTTP in unit tests: its base URL on the free port it took,
 * and requests whose answers are read as JSON when they are JSON.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import { httpCall, type Answer } from "../support/http";

export function baseUrlOf(broker: ServiceBroker): string {
	const api = broker.getLocalService("api") as unknown as { server: Server };
	return `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
}

/** One request to a full URL; the answer read as JSON when it is JSON (test/support/http.ts). */
export function request(
	url: string,
	init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {}
): Promise<Answer> {
	return httpCall("", init.method ?? "GET", url, init);
}

export function postJson(base: string, body: unknown, headers: Record<string, string> = {}) {
	return request(`${base}/reserve`, {
		method: "POST",
		headers: { "Content-Type": "application/json", ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body)
	});
}
