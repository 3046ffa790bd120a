/** The api nodes a test's clients reach, as a load balancer in front of them would spread them. */

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

/**
 * What a load balancer does in front of several api nodes: round-robin over those in rotation. An
 * operator takes a node out (`drain`: no new requests, and those under way are answered) before
 * stopping it, and puts it back once it is healthy.
 */
export interface GatewayPool {
	/** The base URLs in rotation. */
	live(): string[];
	/** A base URL in rotation, the next one round-robin. */
	pick(): string;
	/** Runs `request` against the next gateway, counting it as under way there until it answers. */
	send<T>(request: (baseUrl: string) => Promise<T>): Promise<T>;
	drain(baseUrl: string): Promise<void>;
	restore(baseUrl: string): void;
}

export function gatewayPool(baseUrls: string[]): GatewayPool {
	const inRotation = new Set(baseUrls);
	const underWay = new Map<string, number>();
	let turn = 0;
	const pool: GatewayPool = {
		live: () => baseUrls.filter(url => inRotation.has(url)),
		pick() {
			const live = pool.live();
			if (live.length === 0) throw new Error("no gateway in rotation");
			return live[turn++ % live.length];
		},
		async send(request) {
			const url = pool.pick();
			underWay.set(url, (underWay.get(url) ?? 0) + 1);
			try {
				return await request(url);
			} finally {
				underWay.set(url, underWay.get(url)! - 1);
			}
		},
		async drain(url) {
			inRotation.delete(url);
			while ((underWay.get(url) ?? 0) > 0) await sleep(20);
		},
		restore: url => void inRotation.add(url)
	};
	return pool;
}
