/**
 * The box-office page in an on-sale surge, in a real browser against the real system: a gateway
 * node whose admission gate is full answers 503 SERVER_BUSY with Retry-After, and the page waits
 * ("Busy: trying again in N s", counting down), sends the same order again under the same
 * Idempotency-Key, and books it once.
 */
import net from "node:net";
import type { Browser, BrowserContext } from "playwright-core";
import { launchChromium } from "../support/browser";
import {
	expectStatus,
	fillOrder,
	openBoxOffice,
	pageErrors,
	recordOrders,
	ROCK
} from "../support/box-office-page";
import { httpCall } from "../support/http";
import { startCluster, waitForHealthy, type Cluster } from "../support/system";

let cluster: Cluster;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
	cluster = await startCluster({
		mongo: false,
		env: {
			// One checkout at a time, none waiting: a second one at once is refused.
			ADMISSION_CONCURRENCY: "1",
			ADMISSION_QUEUE: "0",
			ADMISSION_RETRY_AFTER_S: "2",
			BODY_TIMEOUT_MS: "3000"
		}
	});
	await cluster.add({ services: "shows,reservations" });
	await cluster.add({ services: "api" });
	await waitForHealthy(cluster.baseUrl, cluster.nodes[1]);
	browser = await launchChromium();
	context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
}, 120000);

afterAll(async () => {
	await context?.close();
	await browser?.close();
	await cluster?.stop();
	expect(pageErrors.splice(0)).toEqual([]);
});

/**
 * A checkout that takes the gateway's only slot and holds it until its body, never finished, is
 * refused (408 after BODY_TIMEOUT_MS). Resolves once the gateway has answered it.
 */
function slowCheckout(): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = net.connect(cluster.port, "127.0.0.1");
		let answer = "";
		socket.on("data", d => (answer += d.toString()));
		socket.on("close", () => resolve(answer));
		socket.on("error", reject);
		socket.write(
			"POST /reserve HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n" +
				"Idempotency-Key: slow-body-0001\r\nContent-Length: 100\r\n\r\n{"
		);
	});
}

it("says it is busy, counts down, and books the order once under the same key", async () => {
	const before = (await httpCall(cluster.baseUrl, "GET", `/shows/${ROCK}`)).body.reserved;
	const page = await openBoxOffice(context, cluster.baseUrl);
	const { keys } = recordOrders(page);
	const slow = slowCheckout();
	// The slot is taken once a checkout of our own is refused.
	let refused = false;
	for (let tries = 0; tries < 50 && !refused; tries++) {
		const probe = await fetch(`${cluster.baseUrl}/reserve`, {
			method: "POST",
			headers: { "Content-Type": "application/json" },
			body: JSON.stringify({ showID: ROCK, name: "Probe", count: 0 })
		});
		refused = probe.status === 503;
	}
	expect(refused).toBe(true);
	await fillOrder(page, ROCK, 2, "Patient");
	await page.locator("#buy").click();
	await page.locator('#order[data-state="waiting"]').waitFor();
	await expectStatus(page, /^Busy: trying again in \d s/);
	await expect(page.locator("#buy").textContent()).resolves.toMatch(
		/^Busy: trying again in \d s$/
	);
	await expect(page.locator("#buy").isDisabled()).resolves.toBe(true);
	// It counts down to the retry.
	await expectStatus(page, /^Busy: trying again in 1 s/);
	expect(await slow).toMatch(/^HTTP\/1\.1 408/);
	await expectStatus(page, /^Booked: 2 seats for Rock Concert/);
	expect(keys.length).toBeGreaterThanOrEqual(2);
	expect(new Set(keys).size).toBe(1);
	const after = (await httpCall(cluster.baseUrl, "GET", `/shows/${ROCK}`)).body.reserved;
	expect(after).toBe(before + 2);
}, 90000);
