/**
 * deploy/nginx-one-node.conf, as shipped, in a real nginx (Debian's; .ci/run installs it):
 *  - in front of an embedded node, a buyer books, reads, cancels and watches /events through it,
 *    and the node sees the buyer's address;
 *  - a checkout beyond the node's connections (`max_conns`) gets the node's own 503 SERVER_BUSY at
 *    once, in its JSON and with a Retry-After, while reads still pass;
 *  - a node that is down gets the node's 503 SERVICE_UNAVAILABLE, not nginx's HTML, for a checkout
 *    as for a read.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { serverBusy } from "../../lib/common/errors";
import { describeError } from "../../lib/gateway/http-errors";
import { oneNodeConfig, startNginx } from "../../scripts/nginx";
import { freePort } from "../../scripts/servers";
import { openEvents } from "../support/sse";
import { startEmbedded } from "../support/system";

const ROCK = "5b805a00297ae6047030f2e0";

const checkout = (baseUrl: string, name: string) =>
	fetch(`${baseUrl}/reserve`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ showID: ROCK, name, count: 2 })
	});

describe("deploy/nginx-one-node.conf in front of one node", () => {
	it("books, reads, cancels and streams /events through nginx, the node seeing the buyer's address", async () => {
		const system = await startEmbedded({ TRUST_PROXY: "1", RATE_LIMIT: "2" });
		const nginx = await startNginx(port => oneNodeConfig(`127.0.0.1:${system.port}`, port));
		try {
			const events = await openEvents(nginx.baseUrl);
			expect(events.status).toBe(200);
			const booked = await checkout(nginx.baseUrl, "Zoë Ünal");
			expect(booked.status).toBe(201);
			const reservation = (await booked.json()) as { _id: string; name: string };
			expect(reservation.name).toBe("Zoë Ünal");
			// The sale's change reaches the watcher through nginx, not held in its buffers.
			await events.waitFor(f => (f.data ?? "").includes(ROCK));
			events.close();

			const read = await fetch(`${nginx.baseUrl}/reservations/${reservation._id}`);
			expect(await read.json()).toMatchObject({ _id: reservation._id, status: "confirmed" });
			const canceled = await fetch(`${nginx.baseUrl}/reservations/${reservation._id}`, {
				method: "DELETE"
			});
			expect(canceled.status).toBe(200);

			// nginx overwrites X-Forwarded-For with the caller's address, which the node's rate
			// limit counts: a forged entry does not buy a new allowance.
			const statuses: number[] = [];
			for (let i = 0; i < 3; i++) {
				const res = await fetch(`${nginx.baseUrl}/reserve`, {
					method: "POST",
					headers: {
						"content-type": "application/json",
						"x-forwarded-for": `10.0.0.${i}`
					},
					body: JSON.stringify({ showID: ROCK, name: "Mallory", count: 0 })
				});
				statuses.push(res.status);
			}
			expect(statuses.at(-1)).toBe(429);
		} finally {
			await nginx.stop();
			await system.node.stop();
		}
	}, 60000);

	it("refuses a checkout beyond the node's connections with the node's own 503 SERVER_BUSY, while reads pass", async () => {
		// A node that holds every checkout open, behind one checkout connection.
		const held: http.ServerResponse[] = [];
		const node = http.createServer((req, res) => {
			if (req.url === "/reserve") return void held.push(res);
			res.writeHead(200, { "content-type": "application/json" });
			res.end("[]");
		});
		await new Promise<void>(resolve => node.listen(0, "127.0.0.1", resolve));
		const { port } = node.address() as AddressInfo;
		const nginx = await startNginx(listen =>
			oneNodeConfig(`127.0.0.1:${port}`, listen).replace("max_conns=256", "max_conns=1")
		);
		try {
			const first = checkout(nginx.baseUrl, "First");
			while (held.length === 0) await new Promise(r => setTimeout(r, 20));

			const refused = await checkout(nginx.baseUrl, "Second");
			expect(refused.status).toBe(503);
			expect(["1", "2"]).toContain(refused.headers.get("retry-after"));
			expect(refused.headers.get("content-type")).toBe("application/json; charset=utf-8");
			expect(refused.headers.get("cache-control")).toBe("no-store");
			expect(await refused.json()).toEqual(describeError(serverBusy(1)).body);
			expect((await fetch(`${nginx.baseUrl}/`)).status).toBe(200);

			held[0].writeHead(201, { "content-type": "application/json" }).end("{}");
			expect((await first).status).toBe(201);
		} finally {
			await nginx.stop();
			await new Promise(resolve => node.close(resolve));
		}
	}, 60000);

	it("answers the node's 503 SERVICE_UNAVAILABLE, in JSON, while the node is down", async () => {
		const down = await freePort();
		const nginx = await startNginx(listen => oneNodeConfig(`127.0.0.1:${down}`, listen));
		try {
			// A checkout is not told the node is busy: nothing there can take it.
			for (const res of [
				await fetch(`${nginx.baseUrl}/shows/${ROCK}`),
				await checkout(nginx.baseUrl, "Eve")
			]) {
				expect(res.status).toBe(503);
				expect(res.headers.get("retry-after")).toBeTruthy();
				expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
				expect(await res.json()).toMatchObject({ code: 503, type: "SERVICE_UNAVAILABLE" });
			}
		} finally {
			await nginx.stop();
		}
	}, 60000);
});
