/**
 * The box-office page in a real browser (headless Chromium via playwright-core) against the real
 * system: a gateway process and a shows+reservations process over a real nats-server, embedded
 * stores. Purchases are checked through the API, never through the page alone.
 */
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { launchChromium } from "../support/browser";
import { bookThroughGateway, httpCall, jsonBody } from "../support/http";
import { startCluster, waitForHealthy, type Cluster, type NodeHandle } from "../support/system";

const ROCK = "5b805a00297ae6047030f2e0";
const PLAY = "5b805a570cee1505a52bc75d";
const RALLY = "5b805a790cee1505a52bc75e";
const MAX_TICKETS = 6;
const RATE_LIMIT = 80;
const ROOT = path.resolve(__dirname, "..", "..");

let cluster: Cluster;
let stores: NodeHandle;
let browser: Browser;
let context: BrowserContext;
/** Console errors and page errors of every page: a CSP violation shows up here. */
const pageErrors: string[] = [];

async function openPage(options: { blockEvents?: boolean } = {}): Promise<Page> {
	const page = await context.newPage();
	page.on("console", m => {
		// Refusals (409, 422, 503…) and cut connections are logged by Chromium itself.
		if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
			pageErrors.push(m.text());
	});
	page.on("pageerror", e => pageErrors.push(e.message));
	if (options.blockEvents) await page.route("**/events", route => route.abort());
	await page.goto(`${cluster.baseUrl}/box-office/`);
	await page.locator(".show").first().waitFor();
	if (!options.blockEvents) await page.locator('#live-state[data-state="live"]').waitFor();
	return page;
}

const seatsOf = (page: Page, id: string) => page.locator(`[data-show-id="${id}"] .show-seats`);

async function showSeats(id: string): Promise<{ reserved: number; available: number }> {
	const { status, body } = await httpCall(cluster.baseUrl, "GET", `/shows/${id}`);
	expect(status).toBe(200);
	return body;
}

async function fillOrder(page: Page, showID: string, count: number, name: string) {
	await page.locator(`#show-${showID}`).check();
	await page.locator("#count").fill(String(count));
	await page.locator("#name").fill(name);
}

async function bookOnPage(page: Page, showID: string, count: number, name: string) {
	await fillOrder(page, showID, count, name);
	await page.locator("#buy").click();
	await expectStatus(page, /^Booked: /);
	return page.locator(".booking").first().getAttribute("data-booking-id");
}

const expectStatus = (page: Page, text: RegExp) =>
	page.locator("#status").filter({ hasText: text }).waitFor({ timeout: 20000 });
const expectProblem = (page: Page, text: RegExp) =>
	page.locator("#problem").filter({ hasText: text }).waitFor({ timeout: 20000 });

/** Books through the gateway, as another customer. */
const bookViaApi = (showID: string, count: number) =>
	bookThroughGateway(cluster.baseUrl, showID, count, "Other");

/** Every POST /reserve the page sends, with its Idempotency-Key. */
function recordOrders(page: Page): string[] {
	const keys: string[] = [];
	page.on("request", req => {
		if (req.method() === "POST" && req.url().endsWith("/reserve"))
			keys.push(req.headers()["idempotency-key"]);
	});
	return keys;
}

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
		const keys = recordOrders(page);
		const before = await showSeats(ROCK);
		await fillOrder(page, ROCK, 3, "Double Clicker");
		await page.locator("#buy").dblclick();
		await expectStatus(page, /^Booked: 3 seats/);
		await page.waitForTimeout(500); // room for a second order, were one sent
		expect(keys).toHaveLength(1);
		expect((await showSeats(ROCK)).reserved).toBe(before.reserved + 3);
		await expect(page.locator(".booking").count()).resolves.toBe(1);
	});

	it("an answer lost on the way is retried with the same key and books once", async () => {
		const page = await openPage();
		const keys = recordOrders(page);
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

	it("cancel gives the seats back, once, and other pages see it", async () => {
		const page = await openPage();
		const watcher = await openPage();
		const id = await bookOnPage(page, ROCK, 4, "Changed Mind");
		const booked = await showSeats(ROCK);
		const item = page.locator(`[data-booking-id="${id}"]`);
		await item.getByRole("button", { name: /Cancel booking/ }).click();
		await item.getByRole("button", { name: "Keep it" }).click();
		expect((await showSeats(ROCK)).reserved).toBe(booked.reserved);
		await item.getByRole("button", { name: /Cancel booking/ }).click();
		await item.getByRole("button", { name: "Yes, cancel it" }).click();
		await expectStatus(page, /^Canceled: 4 seats for Rock Concert are back on sale\./);
		await expect(item.locator(".booking-state").textContent()).resolves.toMatch(/^Canceled/);
		const after = await showSeats(ROCK);
		expect(after.reserved).toBe(booked.reserved - 4);
		const reservation = await httpCall(cluster.baseUrl, "GET", `/reservations/${id}`);
		expect(reservation.body.status).toBe("canceled");
		await seatsOf(watcher, ROCK)
			.filter({ hasText: `${after.available} of 100 left` })
			.waitFor();
		// The booking is remembered across a reload, as canceled.
		await page.reload();
		await expect(
			page.locator(`[data-booking-id="${id}"] .booking-state`).textContent()
		).resolves.toMatch(/^Canceled/);
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
		const folder = process.env.UPDATE_SCREENSHOTS
			? path.join(ROOT, "docs")
			: path.join(ROOT, ".cache", "screenshots");
		fs.mkdirSync(folder, { recursive: true });
		for (const [name, viewport] of [
			["desktop", { width: 1280, height: 800 }],
			["phone", { width: 360, height: 740 }]
		] as const) {
			await page.setViewportSize(viewport);
			// Nothing wider than the screen: no sideways scrolling on a phone.
			const width = await page.evaluate("document.documentElement.scrollWidth");
			expect({ name, width }).toEqual({ name, width: viewport.width });
			await page.screenshot({
				path: path.join(folder, `box-office-${name}.png`),
				fullPage: true
			});
		}
	});

	it("retries an order the system could not take (503) after Retry-After, with the same key", async () => {
		const page = await openPage();
		const keys = recordOrders(page);
		const before = await showSeats(ROCK);
		await stores.stop();
		await fillOrder(page, ROCK, 1, "Patient");
		await page.locator("#buy").click();
		await expectStatus(page, /busy\. Trying again in \d+ s/);
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
