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
import type { PublicShow } from "./types";
import type { ShowListCache } from "./show-list-cache";

export interface ReadAnswer {
	body: Buffer;
	etag: string;
	headers: Record<string, string>;
}

const JSON_TYPE = "application/json; charset=utf-8";

const SHOW_PATH = /^\/shows\/([0-9a-f]{24})$/;

export function answer(value: unknown, headers: Record<string, string> = {}): ReadAnswer {
	const body = Buffer.from(JSON.stringify(value));
	const hash = crypto.createHash("sha1").update(body).digest("base64url").slice(0, 22);
	return { body, etag: `"${hash}"`, headers };
}

/** One page of the list, with `X-Total-Count` and a `Link` to the next page when there is one. */
export function listAnswer(shows: PublicShow[], offset: number, limit: number): ReadAnswer {
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
export function showAnswer(cache: ShowListCache, show: PublicShow): ReadAnswer {
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
export function actionRead(meta: ReadMeta, read: ReadAnswer, maxAgeSeconds: number): Buffer | null {
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
export function sendRead(
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
