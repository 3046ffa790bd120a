/**
 * The box-office page as a person uses it, for the browser tests: open it, fill an order, click
 * with the real mouse, watch what the page sends, take screenshots at desktop and phone widths.
 */
import fs from "node:fs";
import path from "node:path";
import type { BrowserContext, Page, Request } from "playwright-core";

export const ROCK = "5b805a00297ae6047030f2e0";
export const PLAY = "5b805a570cee1505a52bc75d";
export const RALLY = "5b805a790cee1505a52bc75e";
const ROOT = path.resolve(__dirname, "..", "..");

/** Console errors and page errors of every page opened here: a CSP violation shows up here. */
export const pageErrors: string[] = [];

/** A new page of the context, watched for errors, before it loads anything. */
export async function newPage(context: BrowserContext): Promise<Page> {
	const page = await context.newPage();
	page.on("console", m => {
		// Refusals (409, 422, 503…) and cut connections are logged by Chromium itself.
		if (m.type() === "error" && !m.text().startsWith("Failed to load resource"))
			pageErrors.push(m.text());
	});
	page.on("pageerror", e => pageErrors.push(e.message));
	return page;
}

/** The box office opened and its shows listed (and live, unless the event stream is blocked). */
export async function openBoxOffice(
	context: BrowserContext,
	baseUrl: string,
	options: { blockEvents?: boolean } = {}
): Promise<Page> {
	const page = await newPage(context);
	if (options.blockEvents) await page.route("**/events", route => route.abort());
	await page.goto(`${baseUrl}/box-office/`);
	await page.locator(".show").first().waitFor();
	if (!options.blockEvents) await page.locator('#live-state[data-state="live"]').waitFor();
	return page;
}

export const seatsOf = (page: Page, id: string) =>
	page.locator(`[data-show-id="${id}"] .show-seats`);

export async function fillOrder(page: Page, showID: string, count: number, name: string) {
	await page.locator(`#show-${showID}`).check();
	await page.locator("#count").fill(String(count));
	await page.locator("#name").fill(name);
}

export const expectStatus = (page: Page, text: RegExp) =>
	page.locator("#status").filter({ hasText: text }).waitFor({ timeout: 20000 });
export const expectProblem = (page: Page, text: RegExp) =>
	page.locator("#problem").filter({ hasText: text }).waitFor({ timeout: 20000 });

export async function bookOnPage(page: Page, showID: string, count: number, name: string) {
	await fillOrder(page, showID, count, name);
	await page.locator("#buy").click();
	await expectStatus(page, /^Booked: /);
	return page.locator(".booking").first().getAttribute("data-booking-id");
}

/** The requests of one kind a page (or every page of a context) sends, and their answers. */
export interface Sent {
	/** The Idempotency-Key of each, in order. */
	keys: string[];
	/** Resolves once every request sent so far has its answer (or has failed). */
	settled(): Promise<void>;
}

export function recordRequests(
	target: Page | BrowserContext,
	method: string,
	urlEnd: string | RegExp
): Sent {
	const keys: string[] = [];
	const answers: Promise<unknown>[] = [];
	target.on("request", (req: Request) => {
		const url = new URL(req.url()).pathname;
		const matches = typeof urlEnd === "string" ? url.endsWith(urlEnd) : urlEnd.test(url);
		if (req.method() !== method || !matches) return;
		keys.push(req.headers()["idempotency-key"]);
		answers.push(req.response().catch(() => null));
	});
	return {
		keys,
		async settled() {
			for (let seen = -1; seen !== answers.length;) {
				seen = answers.length;
				await Promise.all(answers);
			}
		}
	};
}

/** Every POST /reserve the page sends, with its Idempotency-Key. */
export const recordOrders = (target: Page | BrowserContext) =>
	recordRequests(target, "POST", "/reserve");

/**
 * Until the page has dealt with the input given so far: a round trip through the page after its
 * event handlers ran, so that a request they started has been reported.
 */
export const pageTurn = (page: Page) =>
	page.evaluate(() => new Promise(resolve => setTimeout(resolve, 0)));

/** The middle of an element on the screen, where a person would click. */
export async function middleOf(page: Page, selector: string): Promise<[number, number]> {
	const box = (await page.locator(selector).boundingBox())!;
	return [box.x + box.width / 2, box.y + box.height / 2];
}

/** Whether a point of the screen is on the element (e.g. still on a button after its label changed). */
export const isOn = (page: Page, [x, y]: [number, number], selector: string) =>
	page.evaluate(
		`document.elementFromPoint(${x}, ${y})?.closest(${JSON.stringify(selector)}) != null`
	);

/**
 * Screenshots of the page as it is, 1280 px wide (`box-office-<state>.png`) and 360 px wide
 * (`box-office-<state>-phone.png`), into docs/ with UPDATE_SCREENSHOTS set, else .cache/. Checks on
 * the way that nothing is wider than the screen: no sideways scrolling on a phone.
 */
export async function screenshots(page: Page, state: string, names = [state, `${state}-phone`]) {
	const folder = process.env.UPDATE_SCREENSHOTS
		? path.join(ROOT, "docs")
		: path.join(ROOT, ".cache", "screenshots");
	fs.mkdirSync(folder, { recursive: true });
	const viewports = [
		{ width: 1280, height: 800 },
		{ width: 360, height: 740 }
	];
	for (const [i, viewport] of viewports.entries()) {
		await page.setViewportSize(viewport);
		const width = await page.evaluate("document.documentElement.scrollWidth");
		expect({ state, width }).toEqual({ state, width: viewport.width });
		await page.screenshot({
			path: path.join(folder, `box-office-${names[i]}.png`),
			fullPage: true
		});
	}
	await page.setViewportSize(viewports[0]);
}
