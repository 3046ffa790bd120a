/**
 * A client for the gateway over real HTTP in unit tests: its base URL on the free port it took,
 * and requests whose answers are read as JSON when they are JSON.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { ServiceBroker } from "moleculer";

export function baseUrlOf(broker: ServiceBroker): string {
	const api = broker.getLocalService("api") as unknown as { server: Server };
	return `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
}

export async function request(
	url: string,
	init: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {}
): Promise<{ status: number; headers: Headers; body: any }> {
	const res = await fetch(url, init);
	const text = await res.text();
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		// not JSON: keep the text
	}
	return { status: res.status, headers: res.headers, body };
}

export function postJson(base: string, body: unknown, headers: Record<string, string> = {}) {
	return request(`${base}/reserve`, {
		method: "POST",
		headers: { "Content-Type": "application/json", ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body)
	});
}
