/**
 * The box-office page in a real browser (headless Chromium via playwright-core) against the real
 * system: a gateway process and a shows+reservations process over a real nats-server, embedded
 * stores. Purchases are checked through the API, never through the page alone.
 */
import http from "node:http";
import type { Browser, BrowserContext } from "playwright-core";
import { launchChromium } from "../support/browser";
import {
	bookOnPage,
	expectProblem,
	expectStatus,
	fillOrder,
	isOn,
	middleOf,
	openBoxOffice,
	pageErrors,
	pageTurn,
	PLAY,
	RALLY,
	recordOrders,
	ROCK,
	screenshots,
	seatsOf
} from "../support/box-office-page";
import { bookThroughGateway, httpCall, jsonBody } from "../support/http";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const MAX_TICKETS = 6;
const RATE_LIMIT = 80;

let cluster: Cluster;
let stores: NodeHandle;
let browser: Browser;
let context: BrowserContext;

const openPage = (options: { blockEvents?: boolean } = {}) =>
	openBoxOffice(context, cluster.baseUrl, options);

async function showSeats(id: string): Promise<{ reserved: number; available: number }> {
	const { status, body } = await httpCall(cluster.baseUrl, "GET", `/shows/${id}`);
	expect(status).toBe(200);
	return body;
}

/** Books through the gateway, as another customer. */
const bookViaApi = (showID: string, count: number) =>
	bookThroughGateway(cluster.baseUrl, showID, count, "Other");

beforeAll(async () => {
	cluster = await startCluster({
		mongo: false,
		env: { MAX_TICKETS_PER_ORDER: String(MAX_TICKETS), RATE_LIMIT: String(RATE_LIMIT) }
	});
	stores = await cluster.add({ services: "shows,reservations" });
	await cluster.add({ services: "api" });
	await waitForHealthy(cluster.baseUrl, cluster.nodes[1]);
	browser = await launchChromium();
}, 120000);

// A fresh browser profile per test: no bookings remembered from another test.
beforeEach(async () => {
	context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
});

afterAll(async () => {
	await browser?.close();
	await cluster?.stop();
});

afterEach(async () => {
	await context.close();
	expect(pageErrors.splice(0)).toEqual([]);
});

describe("the box-office page", () => {
	it("is served at /box-office/ with its own CSP, as a cached asset; /box-office redirects", async () => {
		const redirect = await fetch(`${cluster.baseUrl}/box-office`, { redirect: "manual" });
		expect(redirect.status).toBe(301);
		expect(redirect.headers.get("location")).toBe("/box-office/");

		const page = await fetch(`${cluster.baseUrl}/box-office/`);
		expect(page.status).toBe(200);
		expect(page.headers.get("content-type")).toMatch(/^text\/html/);
		expect(page.headers.get("content-security-policy")).toBe(
			"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
				"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
		);
		expect(page.headers.get("cache-control")).toBe("no-cache");
		expect(page.headers.get("x-frame-options")).toBe("DENY");
		const etag = page.headers.get("etag")!;
		expect(etag).toBeTruthy();
		const html = await page.text();
		// No inline script or style: the CSP would block them.
		expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son\w+=/i);
		// Not fetch(): it marks a conditional request `Cache-Control: no-cache`, which skips 304.
		const again = await new Promise<http.IncomingMessage>((resolve, reject) =>
			http
				.get(
					`${cluster.baseUrl}/box-office/`,
					{ headers: { "If-None-Match": etag } },
					resolve
				)
				.on("error", reject)
		);
		again.resume();
		expect(again.statusCode).toBe(304);

		const script = await fetch(`${cluster.baseUrl}/box-office/box-office.js`);
		expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
		expect(script.headers.get("cache-control")).toMatch(/^public, max-age=\d+$/);
		// Everything else stays uncached, and nothing else of the folder tree answers.
		expect((await fetch(`${cluster.baseUrl}/health`)).headers.get("cache-control")).toBe(
			"no-store"
		);
		for (const url of [
			"/box-office/missing.js",
			"/box-office/../package.json",
			"/box-office/%2e%2e/package.json",
			"/public/box-office/index.html",
			"/box-office.css"
		]) {
			const answer = await httpCall(cluster.baseUrl, "GET", url);
			expect({ url, status: answer.status }).toEqual({ url, status: 404 });
			expect(answer.body.code).toBe(404);
		}
		// A listed path with a method it does not take: 405 with Allow, like every route.
		const post = await httpCall(cluster.baseUrl, "POST", "/box-office/");
		expect(post.status).toBe(405);
		expect(post.headers.get("allow")).toBe("GET");
	});

	it("lists the shows live, marks the sold-out one, and learns the per-order limit", async () => {
		const page = await openPage();
		await expect(page.locator(".show .show-name").allTextContents()).resolves.toEqual([
			"Rock Concert",
			"Shakespeare Play",
			"Monster Truck Rally"
		]);
		await expect(seatsOf(page, RALLY).textContent()).resolves.toBe("Sold out");
		await expect(page.locator(`#show-${RALLY}`).isDisabled()).resolves.toBe(true);
		const rock = await showSeats(ROCK);
		await expect(seatsOf(page, ROCK).textContent()).resolves.toBe(
			`${rock.available} of 100 left`
		);
		await page.locator('#count[max="6"]').waitFor();
		// Labels for every control, and status messages announced.
		await expect(page.getByLabel("Seats").count()).resolves.toBe(1);
		await expect(page.getByLabel("Name for the booking").count()).resolves.toBe(1);
		await expect(page.getByLabel(/Rock Concert/).count()).resolves.toBe(1);
		await expect(page.locator("#status").getAttribute("aria-live")).resolves.toBe("polite");
		await expect(page.locator("#problem").getAttribute("role")).resolves.toBe("alert");
	});

	it("books seats, shows the booking with its link, and the API agrees", async () => {
		const page = await openPage();
		const before = await showSeats(ROCK);
		const id = await bookOnPage(page, ROCK, 2, "Ada Lovelace");
		expect(id).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
		const link = page.locator(".booking").first().locator("a.booking-link");
		await expect(link.getAttribute("href")).resolves.toBe(`/reservations/${id}`);
		await expect(page.locator(".booking").first().textContent()).resolves.toContain(
			"2 seats · Rock Concert"
		);
		const reservation = await httpCall(cluster.baseUrl, "GET", `/reservations/${id}`);
		expect(reservation.body).toMatchObject({
			_id: id,
			showID: ROCK,
			name: "Ada Lovelace",
			guests: 2,
			status: "confirmed"
		});
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 2);
		// The link opens the reservation.
		const [opened] = await Promise.all([
			page.waitForResponse(r => r.url().endsWith(`/reservations/${id}`)),
			link.click()
		]);
		expect(opened.status()).toBe(200);
	});

	it("a second page sees the seats drop without reloading, also when others buy via the API", async () => {
		const buyer = await openPage();
		const watcher = await openPage();
		const start = (await showSeats(PLAY)).available;
		await bookOnPage(buyer, PLAY, 3, "Grace");
		await seatsOf(watcher, PLAY)
			.filter({ hasText: `${start - 3} of 50 left` })
			.waitFor();
		await bookViaApi(PLAY, 1);
		await seatsOf(watcher, PLAY)
			.filter({ hasText: `${start - 4} of 50 left` })
			.waitFor();
		await seatsOf(buyer, PLAY)
			.filter({ hasText: `${start - 4} of 50 left` })
			.waitFor();
	});

	it("a double click books once", async () => {
		const page = await openPage();
		const { keys } = recordOrders(page);
		const before = await showSeats(ROCK);
		await fillOrder(page, ROCK, 3, "Double Clicker");
		await page.locator("#buy").dblclick();
		await expectStatus(page, /^Booked: 3 seats/);
		await page.waitForTimeout(500); // room for a second order, were one sent
		expect(keys).toHaveLength(1);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 3);
		await expect(page.locator(".booking").count()).resolves.toBe(1);
	});

	it("real mouse clicks 50, 150 and 300 ms apart book once each, and the count stays", async () => {
		const page = await openPage();
		const orders = recordOrders(page);
		const before = await showSeats(ROCK);
		await fillOrder(page, ROCK, 2, "Human Clicker");
		const button = await middleOf(page, "#buy");
		for (const [i, gap] of [50, 150, 300].entries()) {
			// A changed name is a new order: it ends the booked state of the one before.
			await page.locator("#name").fill(`Human Clicker ${gap}`);
			await page.mouse.click(...button);
			await page.waitForTimeout(gap);
			await page.mouse.click(...button);
			await pageTurn(page);
			await orders.settled();
			expect({ gap, orders: orders.keys.length }).toEqual({ gap, orders: i + 1 });
			await expectStatus(page, /^Booked: 2 seats for Rock Concert|^Already booked/);
			// The second click landed on the button, whatever its label says now.
			await expect(isOn(page, button, "#buy")).resolves.toBe(true);
			await expect(page.locator("#count").inputValue()).resolves.toBe("2");
		}
		expect(new Set(orders.keys).size).toBe(3);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 6);
		await expect(page.locator(".booking").count()).resolves.toBe(3);
	});

	it("a booked order stays booked: the same order again asks first, under a new key; a change starts anew", async () => {
		const page = await openPage();
		const orders = recordOrders(page);
		const before = await showSeats(ROCK);
		await bookOnPage(page, ROCK, 2, "Second Thoughts");
		await expect(page.locator("#buy").textContent()).resolves.toMatch(/^Booked/);
		// Pressed again later, unchanged: nothing is sent; the page asks.
		await page.locator("#buy").click();
		const again = page.getByRole("button", { name: "Book another 2 seats" });
		await again.waitFor();
		await expectStatus(page, /^Already booked: 2 seats for Rock Concert\./);
		await pageTurn(page);
		expect(orders.keys).toHaveLength(1);
		await again.click();
		await expectStatus(page, /^Booked: 2 seats for Rock Concert/);
		await orders.settled();
		expect(orders.keys).toHaveLength(2);
		await expect(again.isVisible()).resolves.toBe(false);
		// A change of the order ends the booked state: the button books again, with a new key.
		await page.locator("#count").fill("1");
		await expect(page.locator("#buy").textContent()).resolves.toBe("Book seats");
		await page.locator("#buy").click();
		await expectStatus(page, /^Booked: 1 seat for Rock Concert/);
		await orders.settled();
		expect(orders.keys).toHaveLength(3);
		expect(new Set(orders.keys).size).toBe(3);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 5);
		await expect(page.locator(".booking").count()).resolves.toBe(3);
	});

	it("an answer lost on the way is retried with the same key and books once", async () => {
		const page = await openPage();
		const { keys } = recordOrders(page);
		const before = await showSeats(ROCK);
		let lost = false;
		await page.route("**/reserve", async route => {
			if (lost) return route.continue();
			lost = true;
			// The order reaches the system and is booked; the answer never reaches the page.
			const answer = await route.fetch();
			expect(answer.status()).toBe(201);
			await route.abort("connectionreset");
		});
		await fillOrder(page, ROCK, 2, "Flaky Network");
		const replayed = page.waitForResponse(r => r.url().endsWith("/reserve"));
		await page.locator("#buy").click();
		await expectStatus(page, /^Booked: 2 seats/);
		expect((await replayed).headers()["idempotent-replayed"]).toBe("true");
		expect(keys.length).toBeGreaterThanOrEqual(2);
		expect(new Set(keys).size).toBe(1);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 2);
		await expect(page.locator(".booking").count()).resolves.toBe(1);
	});

	it("says when fewer seats are left than asked, and when a show is sold out", async () => {
		// A page whose live updates are cut is stale: others buy meanwhile.
		const stale = await openPage({ blockEvents: true });
		const live = await openPage();
		// One who has chosen the show before it sells out, and then presses Book (screenshots).
		const chooser = await openPage();
		await fillOrder(chooser, PLAY, 1, "Hopeful");
		let { available } = await showSeats(PLAY);
		while (available > 1) {
			const count = Math.min(MAX_TICKETS, available - 1);
			await bookViaApi(PLAY, count);
			available -= count;
		}
		await fillOrder(stale, PLAY, 2, "Late Comer");
		await stale.locator("#buy").click();
		await expectProblem(stale, /^Sorry, only 1 seat left for Shakespeare Play\./);

		await bookViaApi(PLAY, 1);
		await stale.locator("#count").fill("1");
		await stale.locator("#buy").click();
		await expectProblem(stale, /^Sorry, Shakespeare Play is sold out\. Nothing was booked\./);
		expect((await showSeats(PLAY)).available).toBe(0);

		await seatsOf(live, PLAY).filter({ hasText: "Sold out" }).waitFor();
		await expect(live.locator(`#show-${PLAY}`).isDisabled()).resolves.toBe(true);

		await expectStatus(chooser, /^Shakespeare Play has just sold out\./);
		await chooser.locator("#buy").click();
		await expectProblem(chooser, /^Sorry, Shakespeare Play is sold out\. Nothing was booked\./);
		await screenshots(chooser, "sold-out");
	});

	it("refuses more seats than one order may have, in the page and from the server", async () => {
		const page = await openPage();
		await page.locator('#count[max="6"]').waitFor();
		await fillOrder(page, ROCK, MAX_TICKETS + 1, "Greedy");
		await page.locator("#buy").click();
		await expectProblem(page, /At most 6 seats can be booked in one order/);
		await expect(page.locator("#count").getAttribute("aria-invalid")).resolves.toBe("true");

		// A page that could not learn the limit hears it from the server (422).
		const blind = await context.newPage();
		await blind.route("**/openapi.json", route => route.abort());
		await blind.goto(`${cluster.baseUrl}/box-office/`);
		await blind.locator('#live-state[data-state="live"]').waitFor();
		const before = await showSeats(ROCK);
		await fillOrder(blind, ROCK, MAX_TICKETS + 1, "Greedy");
		const refused = blind.waitForResponse(r => r.url().endsWith("/reserve"));
		await blind.locator("#buy").click();
		expect((await refused).status()).toBe(422);
		await expectProblem(
			blind,
			/^At most 6 seats can be booked in one order\. Nothing was booked\./
		);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved);
	});

	it("works with the keyboard alone", async () => {
		const page = await openPage();
		const before = await showSeats(ROCK);
		await page.locator(`#show-${ROCK}`).focus();
		await page.keyboard.press("Space");
		await page.keyboard.press("Tab");
		await expect(
			page.evaluate("document.activeElement && document.activeElement.id")
		).resolves.toBe("count");
		await page.keyboard.press("Control+A");
		await page.keyboard.type("2");
		await page.keyboard.press("Tab");
		await page.keyboard.type("Keyboard User");
		await page.keyboard.press("Enter");
		await expectStatus(page, /^Booked: 2 seats for Rock Concert/);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 2);
		// Focus moves to the bookings, where the cancel is the next stop.
		await expect(
			page.evaluate("document.activeElement && document.activeElement.id")
		).resolves.toBe("bookings-heading");
	});

	it("is readable at 360 px and on a desktop, a booking made (screenshots)", async () => {
		const page = await openPage();
		await bookOnPage(page, ROCK, 2, "Ada Lovelace");
		await screenshots(page, "booked", ["desktop", "phone"]);
	});

	it("retries an order the system could not take (503) after Retry-After, with the same key", async () => {
		const page = await openPage();
		const { keys } = recordOrders(page);
		const before = await showSeats(ROCK);
		await stores.stop();
		await fillOrder(page, ROCK, 1, "Patient");
		await page.locator("#buy").click();
		await expectStatus(page, /Busy: trying again in \d+ s/);
		await expect(page.locator("#buy").isDisabled()).resolves.toBe(true);
		await stores.start();
		await waitForHealthy(cluster.baseUrl, stores);
		// Either an automatic retry got through, or the page says to press again (same order).
		await page
			.locator("#status, #problem")
			.filter({ hasText: /^Booked: |press Book seats again/ })
			.first()
			.waitFor({ timeout: 30000 });
		if (
			await page
				.locator("#problem")
				.filter({ hasText: /press Book seats again/ })
				.count()
		)
			await page.locator("#buy").click();
		await expectStatus(page, /^Booked: 1 seat for Rock Concert/);
		expect(keys.length).toBeGreaterThanOrEqual(2);
		expect(new Set(keys).size).toBe(1);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 1);
	});

	it("says when to come back once rate limited (429), booking nothing", async () => {
		const page = await openPage();
		const before = await showSeats(ROCK);
		// Use up this address's checkouts with orders that book nothing.
		for (let i = 0; i <= RATE_LIMIT; i++) {
			const answer = await httpCall(
				cluster.baseUrl,
				"POST",
				"/reserve",
				jsonBody({ name: "X", count: 0, showID: ROCK })
			);
			if (answer.status === 429) break;
		}
		await fillOrder(page, ROCK, 1, "Too Fast");
		await page.locator("#buy").click();
		await expectProblem(
			page,
			/^Too many orders from your connection just now\. Nothing was booked\. Please try again after \d\d:\d\d:\d\d/
		);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved);
	});
});
