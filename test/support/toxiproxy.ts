/**
 * A small typed client for toxiproxy's HTTP API (https://github.com/Shopify/toxiproxy#http-api):
 * proxies that stand between a node and a server, and the toxics that degrade them. The server
 * itself is started by scripts/servers.js (`startToxiproxy`).
 */

export interface Proxy {
	name: string;
	/** host:port toxiproxy listens on for this proxy. */
	listen: string;
	/** host:port it forwards to. */
	upstream: string;
	enabled: boolean;
	toxics?: Toxic[];
}

/** Which way the bytes flow: `upstream` is client to server, `downstream` server to client. */
export type Stream = "upstream" | "downstream";

interface ToxicBase {
	name: string;
	stream: Stream;
	/** Share of connections it applies to, 0..1 (default 1). */
	toxicity?: number;
}

export type Toxic =
	| (ToxicBase & { type: "latency"; attributes: { latency: number; jitter?: number } })
	/** No bytes pass; with `timeout` 0 the connection stays open until the toxic is removed. */
	| (ToxicBase & { type: "timeout"; attributes: { timeout: number } })
	| (ToxicBase & { type: "bandwidth"; attributes: { rate: number } })
	| (ToxicBase & { type: "reset_peer"; attributes: { timeout: number } });

export class ToxiproxyError extends Error {
	override name = "ToxiproxyError";
}

export interface ToxiproxyClient {
	createProxy(proxy: { name: string; listen: string; upstream: string }): Promise<Proxy>;
	getProxy(name: string): Promise<Proxy>;
	/** Enables or disables a proxy: disabled, it closes its connections and refuses new ones. */
	setEnabled(name: string, enabled: boolean): Promise<Proxy>;
	addToxic(proxy: string, toxic: Toxic): Promise<Toxic>;
	removeToxic(proxy: string, toxic: string): Promise<void>;
	deleteProxy(name: string): Promise<void>;
	/** Enables every proxy and removes every toxic. */
	reset(): Promise<void>;
}

export function toxiproxyClient(apiUrl: string): ToxiproxyClient {
	async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
		const res = await fetch(`${apiUrl}${path}`, {
			method,
			headers: body === undefined ? {} : { "content-type": "application/json" },
			body: body === undefined ? undefined : JSON.stringify(body),
			signal: AbortSignal.timeout(10000)
		});
		const text = await res.text();
		if (!res.ok) throw new ToxiproxyError(`${method} ${path}: ${res.status} ${text}`);
		return (text ? JSON.parse(text) : undefined) as T;
	}
	const at = (name: string) => `/proxies/${encodeURIComponent(name)}`;
	return {
		createProxy: proxy => request("POST", "/proxies", { ...proxy, enabled: true }),
		getProxy: name => request("GET", at(name)),
		setEnabled: (name, enabled) => request("POST", at(name), { enabled }),
		addToxic: (proxy, toxic) =>
			request("POST", `${at(proxy)}/toxics`, { toxicity: 1, ...toxic }),
		removeToxic: (proxy, toxic) =>
			request("DELETE", `${at(proxy)}/toxics/${encodeURIComponent(toxic)}`),
		deleteProxy: name => request("DELETE", at(name)),
		reset: () => request("POST", "/reset")
	};
}
