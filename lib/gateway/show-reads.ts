/**
 * `GET /` and `GET /shows/:id` answered from bytes the gateway already holds: its show list (lib/
 * show-list-cache.ts), kept fresh by events, serialised once per change and reused by every read
 * until the next one. The answers carry an `ETag` (a hash of the bytes, the same on every gateway
 * node) and a short `Cache-Control` max-age, so that browsers and CDNs can revalidate with
 * `If-None-Match` and get a 304. A client may see availability that many seconds old; a checkout
 * always decides on the store.
 *
 * Warm reads skip moleculer-web's routing and the broker altogether (`answerCachedRead`); the rest
 * (a cold cache, a query, a show the cache does not know) go through the actions, which build the
 * same answer.
 */
import crypto from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "moleculer";
import { appConfig } from "../common/config";
import { showNotFound } from "../common/errors";
import { SHOW_ID_PATTERN } from "./checkout-route";
import type { PublicShow } from "../common/types";
import { loadShows, type ReadAnswer, type ShowListCache } from "./show-list-cache";

const JSON_TYPE = "application/json; charset=utf-8";

/** Shows per page of GET /, by default and at most. */
export const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

const SHOW_PATH = /^\/shows\/([0-9a-f]{24})$/;

export function answer(value: unknown, headers: Record<string, string> = {}): ReadAnswer {
	const body = Buffer.from(JSON.stringify(value));
	const hash = crypto.createHash("sha1").update(body).digest("base64url").slice(0, 22);
	return { body, etag: `"${hash}"`, headers };
}

/** One page of the list, with `X-Total-Count` and a `Link` to the next page when there is one. */
function listAnswer(shows: PublicShow[], offset: number, limit: number): ReadAnswer {
	const headers: Record<string, string> = { "X-Total-Count": String(shows.length) };
	if (offset + limit < shows.length)
		headers.Link = `</?limit=${limit}&offset=${offset + limit}>; rel="next"`;
	const page =
		offset === 0 && limit >= shows.length ? shows : shows.slice(offset, offset + limit);
	return answer(page, headers);
}

/**
 * The first page (what `GET /` without a query answers), serialised once per change. Kept only
 * when `shows` is the cached list: a fetch that raced a change event is answered, never kept.
 */
export function firstPageAnswer(
	cache: ShowListCache,
	shows: PublicShow[],
	limit: number
): ReadAnswer {
	if (shows !== cache.shows) return listAnswer(shows, 0, limit);
	cache.firstPage ??= listAnswer(shows, 0, limit);
	return cache.firstPage;
}

/** One show, serialised once per change of it. */
function showAnswer(cache: ShowListCache, show: PublicShow): ReadAnswer {
	let cached = cache.answers.get(show._id);
	if (!cached) {
		cached = answer(show);
		cache.answers.set(show._id, cached);
	}
	return cached;
}

/** True when the client already has these bytes (`If-None-Match`). */
function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
	if (!ifNoneMatch) return false;
	return ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some(tag => tag.trim() === etag);
}

/** What the read actions need of `ctx.meta`: the client's `If-None-Match`, and moleculer-web's answer fields. */
export interface ReadMeta {
	ifNoneMatch?: string;
	$statusCode?: number;
	$responseType?: string;
	$responseHeaders?: Record<string, string>;
}

/** A read answer as an action returns it: the bytes, or nothing with a 304. */
function actionRead(meta: ReadMeta, read: ReadAnswer, maxAgeSeconds: number): Buffer | null {
	meta.$responseHeaders = {
		...read.headers,
		ETag: read.etag,
		"Cache-Control": `public, max-age=${maxAgeSeconds}`
	};
	if (notModified(meta.ifNoneMatch, read.etag)) {
		meta.$statusCode = 304;
		return null;
	}
	meta.$responseType = JSON_TYPE;
	return read.body;
}

/** Writes a read answer: 200 with its bytes, or 304 when the client has them. */
function sendRead(
	req: IncomingMessage,
	res: ServerResponse,
	read: ReadAnswer,
	maxAgeSeconds: number
): void {
	res.setHeader("ETag", read.etag);
	res.setHeader("Cache-Control", `public, max-age=${maxAgeSeconds}`);
	if (notModified(req.headers["if-none-match"], read.etag)) {
		res.writeHead(304);
		res.end();
		return;
	}
	for (const [name, value] of Object.entries(read.headers)) res.setHeader(name, value);
	res.setHeader("Content-Type", JSON_TYPE);
	res.setHeader("Content-Length", read.body.length);
	res.writeHead(200);
	res.end(read.body);
}

export interface ReadOptions {
	ttlMs: number;
	pageSize: number;
	maxAgeSeconds: number;
}

/**
 * Answers a warm `GET /` or `GET /shows/<id>` that the cache knows from its bytes, without
 * moleculer-web's routing or a broker call; false for anything else, which goes on to the routes.
 */
export function answerCachedRead(
	cache: ShowListCache,
	req: IncomingMessage,
	res: ServerResponse,
	options: ReadOptions
): boolean {
	if (req.method !== "GET" || !cache.shows || Date.now() - cache.fetchedAt >= options.ttlMs)
		return false;
	const url = req.url ?? "";
	let read: ReadAnswer | null = null;
	if (url === "/") read = firstPageAnswer(cache, cache.shows, options.pageSize);
	else {
		const id = SHOW_PATH.exec(url)?.[1];
		const show = id ? cache.byId.get(id) : undefined;
		if (show) read = showAnswer(cache, show);
	}
	if (!read) return false;
	sendRead(req, res, read, options.maxAgeSeconds);
	return true;
}

/** What the read actions need of the gateway service. */
interface ReadingGateway {
	showsCache: ShowListCache;
	settings: { showsCacheTtlMs: number };
}

/** The gateway's actions behind `GET /` and `GET /shows/:id`, for reads the cache cannot answer. */
export const readActions = {
	/**
	 * The shows, a page at a time (default 100) so that the answer stays small however many
	 * shows there are; `Link: <…>; rel="next"` and `X-Total-Count` tell what else there is.
	 */
	listShows: {
		params: {
			limit: {
				type: "number",
				integer: true,
				min: 1,
				max: MAX_PAGE,
				optional: true,
				convert: true
			},
			offset: { type: "number", integer: true, min: 0, optional: true, convert: true }
		},
		async handler(
			this: ReadingGateway,
			ctx: Context<{ limit?: number; offset?: number }, ReadMeta>
		) {
			const limit = ctx.params.limit ?? DEFAULT_PAGE;
			const offset = ctx.params.offset ?? 0;
			const shows = await loadShows(this.showsCache, ctx, this.settings.showsCacheTtlMs);
			const page =
				offset === 0 && limit === DEFAULT_PAGE
					? firstPageAnswer(this.showsCache, shows, limit)
					: listAnswer(shows, offset, limit);
			return actionRead(ctx.meta, page, appConfig.readMaxAgeSeconds);
		}
	},

	/** One show, from the cached list when it knows it (a new show: from the store). */
	getShow: {
		params: { id: { type: "string", max: 64 } },
		async handler(this: ReadingGateway, ctx: Context<{ id: string }, ReadMeta>) {
			// Show ids are hex: any case names the same show.
			const id = ctx.params.id.toLowerCase();
			if (!SHOW_ID_PATTERN.test(id)) throw showNotFound(id);
			await loadShows(this.showsCache, ctx, this.settings.showsCacheTtlMs);
			const cached = this.showsCache.byId.get(id);
			const show =
				cached ?? (await ctx.call<PublicShow, object>("shows.get", { showID: id }));
			const read = cached ? showAnswer(this.showsCache, show) : answer(show);
			return actionRead(ctx.meta, read, appConfig.readMaxAgeSeconds);
		}
	}
};
