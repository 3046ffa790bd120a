/**
 * The bookings on the box-office page, in a real browser (headless Chromium via playwright-core)
 * against the real system: a gateway process and a shows+reservations process over a real
 * nats-server, embedded stores. The cancel, what a reload shows, an order the tab closed on, and
 * how it looks at 1280 and 360 px. Bookings are checked through the API, never through the page alone.
 */
import type { Browser, BrowserContext } from "playwright-core";
import { launchChromium } from "../support/browser";
import {
	bookOnPage,
	expectStatus,
	fillOrder,
	middleOf,
	openBoxOffice,
	pageErrors,
	pageTurn,
	recordOrders,
	recordRequests,
	ROCK,
	screenshots,
	seatsOf
} from "../support/box-office-page";
import { httpCall } from "../support/http";
import { startCluster, waitForHealthy, type Cluster } from "../support/system";

let cluster: Cluster;
let browser: Browser;
let context: BrowserContext;

const openPage = () => openBoxOffice(context, cluster.baseUrl);

async function reservedOf(id: string): Promise<number> {
	const { status, body } = await httpCall(cluster.baseUrl, "GET", `/shows/${id}`);
	expect(status).toBe(200);
	return body.reserved;
}

beforeAll(async () => {
	cluster = await startCluster({ mongo: false });
	await cluster.add({ services: "shows,reservations" });
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

describe("the bookings on the box-office page", () => {
	it("cancel gives the seats back, once, and other pages see it", async () => {
		const page = await openPage();
		const watcher = await openPage();
		const deletes = recordRequests(page, "DELETE", /^\/reservations\//);
		const id = await bookOnPage(page, ROCK, 4, "Changed Mind");
		const booked = await reservedOf(ROCK);
		const item = page.locator(`[data-booking-id="${id}"]`);
		await item.getByRole("button", { name: /Cancel booking/ }).click();
		await item.getByRole("button", { name: "Keep it" }).click();
		expect(await reservedOf(ROCK)).toBe(booked);
		await item.getByRole("button", { name: /Cancel booking/ }).click();
		const yes = await middleOf(page, `[data-booking-id="${id}"] .cancel-confirm`);
		await page.mouse.click(...yes);
		await expectStatus(page, /^Canceled: 4 seats for Rock Concert are back on sale\./);
		await expect(item.locator(".booking-state").textContent()).resolves.toBe(
			"Canceled: the seats are back on sale."
		);
		// The order form is no longer booked: the same order again would be a new booking.
		await expect(page.locator("#buy").textContent()).resolves.toBe("Book seats");
		// Nothing is left to press: a canceled booking cannot be canceled again.
		await expect(item.getByRole("button").count()).resolves.toBe(0);
		await page.mouse.click(...yes);
		await pageTurn(page);
		await deletes.settled();
		expect(deletes.keys).toHaveLength(1);
		expect(await reservedOf(ROCK)).toBe(booked - 4);
		const reservation = await httpCall(cluster.baseUrl, "GET", `/reservations/${id}`);
		expect(reservation.body.status).toBe("canceled");
		const { available } = (await httpCall(cluster.baseUrl, "GET", `/shows/${ROCK}`)).body;
		await seatsOf(watcher, ROCK)
			.filter({ hasText: `${available} of 100 left` })
			.waitFor();
		await screenshots(page, "canceled");
		// The booking is remembered across a reload, as canceled, with nothing to press.
		await page.reload();
		await expect(
			page.locator(`[data-booking-id="${id}"] .booking-state`).textContent()
		).resolves.toMatch(/^Canceled/);
		await expect(item.getByRole("button").count()).resolves.toBe(0);
	});

	it("one seat is one seat: the messages agree in number", async () => {
		const page = await openPage();
		const id = await bookOnPage(page, ROCK, 1, "Single");
		await expectStatus(page, /^Booked: 1 seat for Rock Concert\./);
		const item = page.locator(`[data-booking-id="${id}"]`);
		await expect(item.locator(".booking-what").textContent()).resolves.toBe(
			"1 seat · Rock Concert"
		);
		await item.getByRole("button", { name: /Cancel booking/ }).click();
		await item.getByRole("button", { name: "Yes, cancel it" }).click();
		await expectStatus(page, /^Canceled: 1 seat for Rock Concert is back on sale\.$/);
		await expect(item.locator(".booking-state").textContent()).resolves.toBe(
			"Canceled: the seat is back on sale."
		);
	});

	it("after a reload, each booking shows its state on the server, canceled elsewhere included", async () => {
		const page = await openPage();
		const kept = await bookOnPage(page, ROCK, 2, "Kept");
		const gone = await bookOnPage(page, ROCK, 2, "Canceled Elsewhere");
		expect(gone).not.toBe(kept);
		// Canceled through the API (another device, the phone line): this page never heard of it.
		const cancel = await httpCall(cluster.baseUrl, "DELETE", `/reservations/${gone}`);
		expect(cancel.status).toBe(200);
		await page.reload();
		const canceled = page.locator(`[data-booking-id="${gone}"]`);
		await canceled
			.locator(".booking-state")
			.filter({ hasText: /^Canceled/ })
			.waitFor();
		await expect(canceled.getByRole("button").count()).resolves.toBe(0);
		const confirmed = page.locator(`[data-booking-id="${kept}"]`);
		await expect(confirmed.locator(".booking-state").textContent()).resolves.toBe("Confirmed.");
		await expect(
			confirmed.getByRole("button", { name: /Cancel booking/ }).isVisible()
		).resolves.toBe(true);
	});

	it("an order left unfinished when the tab closed is taken up on the next visit, under the same key", async () => {
		const orders = recordOrders(context);
		const before = await reservedOf(ROCK);
		const page = await openPage();
		let reached!: () => void;
		const booked = new Promise<void>(resolve => (reached = resolve));
		await page.route("**/reserve", async route => {
			// The order reaches the system and is booked; the tab closes before the answer is back.
			await route.fetch();
			reached();
		});
		await fillOrder(page, ROCK, 3, "Closed Tab");
		await page.locator("#buy").click();
		await booked;
		await page.close();
		expect(orders.keys).toHaveLength(1);

		// The closed tab never had its answer: the next answer to an order is the next visit's.
		const replayed = context.waitForEvent("response", r => r.url().endsWith("/reserve"));
		const next = await openPage();
		await expectStatus(next, /^Booked: 3 seats for Rock Concert/);
		expect((await replayed).headers()["idempotent-replayed"]).toBe("true");
		expect(orders.keys).toHaveLength(2);
		expect(new Set(orders.keys).size).toBe(1);
		await expect(next.locator(".booking").count()).resolves.toBe(1);
		expect(await reservedOf(ROCK)).toBe(before + 3);
		// Taken up once: another visit has nothing left to send.
		await next.reload();
		await next.locator(".booking").first().waitFor();
		await pageTurn(next);
		await orders.settled();
		expect(orders.keys).toHaveLength(2);
	});

	it("looks ordered at 1280 and 360 px: title over the form, cancel not a main button, ids unbroken", async () => {
		const page = await openPage();
		const id = await bookOnPage(page, ROCK, 2, "Looks");
		for (const width of [1280, 360]) {
			await page.setViewportSize({ width, height: 800 });
			// Page code as text: the tests compile without the DOM's types.
			const look = (await page.evaluate(`(() => {
				const box = selector => document.querySelector(selector).getBoundingClientRect();
				const style = selector => getComputedStyle(document.querySelector(selector));
				const lines = document.createRange();
				lines.selectNodeContents(document.querySelector('[data-booking-id="${id}"] code'));
				return {
					titleLeft: Math.round(box(".masthead h1").left),
					formLeft: Math.round(box("#order").left),
					cancelLooksLikeBuy:
						style(".booking .cancel").backgroundColor === style("#buy").backgroundColor,
					idLines: lines.getClientRects().length
				};
			})()`)) as Record<string, unknown>;
			expect({ width, ...look }).toEqual({
				width,
				titleLeft: look.formLeft,
				formLeft: look.formLeft,
				cancelLooksLikeBuy: false,
				idLines: 1
			});
		}
	});
});
