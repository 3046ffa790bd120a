/**
 * The gateway behind a real nginx (`TRUST_PROXY=1`), which appends the address it was called from
 * to `X-Forwarded-For` as proxies do: the client's own entries to the left are not believed, so a
 * forged entry does not escape the checkout rate limit or the per-client cap on event streams,
 * while another client (another loopback address) keeps its own allowance.
 */
import http from "node:http";
import { startNginx } from "../../scripts/nginx";
import { startEmbedded } from "../support/system";

const RATE_LIMIT = 5;
const STREAMS_PER_CLIENT = 2;
/** Both on the loopback interface: two clients with addresses of their own. */
const ALICE = "127.0.0.1";
const BOB = "127.0.0.2";

let system: Awaited<ReturnType<typeof startEmbedded>>;
let nginx: Awaited<ReturnType<typeof startNginx>>;
const openStreams: http.IncomingMessage[] = [];

/** nginx appending, as proxies do, the address it was called from to X-Forwarded-For. */
const appendingProxy = (upstream: number) => (listen: number) => `
    server {
        listen 127.0.0.1:${listen};
        location / {
            proxy_pass http://127.0.0.1:${upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
`;

/** A request to nginx from `from`, answered with its status; a stream's answer is kept open. */
function throughProxy(
	from: string,
	method: string,
	url: string,
	headers: Record<string, string>,
	body?: string
): Promise<number> {
	return new Promise((resolve, reject) => {
		const req = http.request(
			{ host: "127.0.0.1", port: nginx.port, localAddress: from, method, path: url, headers },
			res => {
				if (res.headers["content-type"]?.startsWith("text/event-stream")) {
					openStreams.push(res);
					resolve(res.statusCode!);
					return;
				}
				res.resume();
				res.on("end", () => resolve(res.statusCode!));
			}
		);
		req.on("error", reject);
		req.end(body);
	});
}

/** A checkout nobody can book (count 0): refused as invalid, or 429 once over the limit. */
const checkout = (from: string, forwardedFor: string) =>
	throughProxy(
		from,
		"POST",
		"/reserve",
		{ "Content-Type": "application/json", "X-Forwarded-For": forwardedFor },
		JSON.stringify({ showID: "5b805a00297ae6047030f2e0", name: "Mallory", count: 0 })
	);

beforeAll(async () => {
	system = await startEmbedded({
		TRUST_PROXY: "1",
		RATE_LIMIT: String(RATE_LIMIT),
		EVENTS_MAX_STREAMS_PER_CLIENT: String(STREAMS_PER_CLIENT)
	});
	nginx = await startNginx(appendingProxy(system.port), { workers: 1, connections: 64 });
});

afterAll(async () => {
	for (const res of openStreams) res.destroy();
	await nginx?.stop();
	await system?.node.stop();
});

describe("behind a trusted proxy", () => {
	it("keeps a client that forges the leftmost X-Forwarded-For entry to the rate limit; another client keeps its own", async () => {
		// More than twice the limit: even if the limiter's window turns over in between, one of
		// the two windows sees more checkouts than the limit allows.
		const statuses: number[] = [];
		for (let i = 0; i < RATE_LIMIT * 2 + 2; i++)
			statuses.push(await checkout(ALICE, `203.0.113.${i}, 198.51.100.7`));
		expect(statuses).toContain(429);
		expect(statuses.filter(s => s !== 429)).not.toHaveLength(0);
		for (const status of statuses) expect([422, 429]).toContain(status);
		// Bob is counted by his own address, not the proxy's or Alice's.
		expect(await checkout(BOB, "203.0.113.1")).toBe(422);
	});

	it("holds a client to its own cap of event streams whatever it writes into X-Forwarded-For", async () => {
		const opened: number[] = [];
		for (let i = 0; i < STREAMS_PER_CLIENT + 1; i++)
			opened.push(
				await throughProxy(ALICE, "GET", "/events", {
					"X-Forwarded-For": `198.51.100.${i}`
				})
			);
		expect(opened).toEqual([...Array<number>(STREAMS_PER_CLIENT).fill(200), 503]);
		expect(await throughProxy(BOB, "GET", "/events", {})).toBe(200);
	});
});
