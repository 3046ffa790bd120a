/**
 * The gateway's cached show list: filled in pages from `shows.list`, patched in place by
 * `shows.changed` events, and trusted no longer than a safety TTL in case an event was missed.
 * Every state carries its show's document version, so a fetch that raced events is mended by them
 * rather than thrown away: a list keeps filling while an on-sale changes it many times a second.
 */
import type { Context } from "moleculer";
import { notEnoughSeats } from "../common/errors";
import type { PublicShow, ShowState } from "../common/types";

/** A read serialised once: its bytes, ETag and headers (answered by lib/gateway/show-reads.ts). */
export interface ReadAnswer {
	body: Buffer;
	etag: string;
	headers: Record<string, string>;
}

/** Shows per `shows.list` call when filling the cache: well inside NATS's 1 MB message limit. */
const FETCH_PAGE = 5000;

export interface ShowListCache {
	shows: PublicShow[] | null;
	byId: Map<string, PublicShow>;
	fetchedAt: number;
	/**
	 * Bumped by every change, so that a fetch without versions (from a shows node of an older
	 * release) that raced one is not cached.
	 */
	generation: number;
	/** Bumped whenever events may have been missed, so that a fetch begun before is not cached. */
	forgotten: number;
	refreshing: Promise<PublicShow[]> | null;
	/** Serialised answers (lib/gateway/show-reads.ts), dropped whenever what they show changes. */
	firstPage: ReadAnswer | null;
	answers: Map<string, ReadAnswer>;
	/** The newest state known per show with its document version: from events, answers, fetches. */
	latest: Map<string, ShowState>;
}

export function createShowListCache(): ShowListCache {
	return {
		shows: null,
		byId: new Map(),
		fetchedAt: 0,
		generation: 0,
		forgotten: 0,
		refreshing: null,
		firstPage: null,
		answers: new Map(),
		latest: new Map()
	};
}

/**
 * The show list from cache, refreshed when it is older than `ttlMs`. Concurrent readers share one
 * refresh, fetched in pages that each fit in one broker message.
 */
export function loadShows(
	cache: ShowListCache,
	ctx: Context,
	ttlMs: number
): Promise<PublicShow[]> {
	if (cache.shows && Date.now() - cache.fetchedAt < ttlMs) return Promise.resolve(cache.shows);
	if (cache.refreshing) return cache.refreshing;
	const { generation, forgotten } = cache;
	const refresh = (async () => {
		const fetched: (PublicShow & { version?: number })[] = [];
		for (;;) {
			const page = await fetchPage(ctx, fetched.length);
			fetched.push(...page);
			if (page.length < FETCH_PAGE) break;
		}
		const shows = mendedByEvents(cache, fetched);
		if (cache.forgotten === forgotten && (shows || cache.generation === generation))
			keepList(cache, shows ?? fetched);
		return shows ?? fetched;
	})();
	cache.refreshing = refresh;
	const clear = () => {
		if (cache.refreshing === refresh) cache.refreshing = null;
	};
	refresh.then(clear, clear);
	return refresh;
}

/** One page of the list, each show with its version (from a shows node of this release). */
async function fetchPage(ctx: Context, offset: number): Promise<PublicShow[]> {
	try {
		// Asked in meta, not as a parameter, which an older shows node may refuse (docs/api.md).
		return await ctx.call<PublicShow[], object>(
			"shows.list",
			{ offset, limit: FETCH_PAGE },
			{ meta: { showVersions: true } }
		);
	} finally {
		// Moleculer merges the callee's meta into the reader's: the flag goes no further.
		delete (ctx.meta as { showVersions?: boolean }).showVersions;
	}
}

function publicPart({ _id, name, houseSize, reserved, available }: PublicShow): PublicShow {
	return { _id, name, houseSize, reserved, available };
}

/**
 * A fetched list brought up to the newest state known of each show: a show that an event moved on
 * while its page was on the way takes the event's state, and a show created meanwhile is added in
 * the store's order. Null when a show came without its version.
 */
function mendedByEvents(
	cache: ShowListCache,
	fetched: (PublicShow & { version?: number })[]
): PublicShow[] | null {
	if (fetched.some(show => show.version === undefined)) return null;
	const shows: PublicShow[] = [];
	const seen = new Set<string>();
	for (const show of fetched as ShowState[]) {
		// Pages are read at different moments, so a show may come twice.
		if (seen.has(show._id)) continue;
		seen.add(show._id);
		const known = cache.latest.get(show._id);
		if (known && known.version > show.version) shows.push(publicPart(known));
		else {
			cache.latest.set(show._id, show);
			shows.push(publicPart(show));
		}
	}
	const created = [...cache.latest.values()].filter(show => !seen.has(show._id));
	if (created.length === 0) return shows;
	shows.push(...created.map(publicPart));
	return shows.sort((a, b) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0));
}

function keepList(cache: ShowListCache, shows: PublicShow[]): void {
	cache.shows = shows;
	cache.byId = new Map(shows.map(s => [s._id, s]));
	cache.fetchedAt = Date.now();
	cache.firstPage = null;
	cache.answers.clear();
}

/**
 * A show's seats or size changed somewhere: patch the cached list in place. A state older than
 * one already applied (an event that arrives after a newer answer or event) is dropped.
 */
export function patchShow(cache: ShowListCache, show: PublicShow & { version?: number }): void {
	if (show.version !== undefined) {
		const known = cache.latest.get(show._id);
		if (known && known.version >= show.version) return;
		cache.latest.set(show._id, show as ShowState);
	}
	cache.generation++;
	cache.firstPage = null;
	cache.answers.delete(show._id);
	if (!cache.shows) return;
	const cached = cache.byId.get(show._id);
	// A new show: refetch, so the list keeps the store's order.
	if (cached) Object.assign(cached, publicPart(show));
	else cache.shows = null;
}

/**
 * The refusal for a checkout of a show that this node's fresh list shows sold out, or null. The
 * list may be a moment behind a cancel; the next event brings the seats back to the list.
 */
export function knownSoldOut(
	cache: ShowListCache,
	ttlMs: number,
	showID: string,
	count: number
): Error | null {
	return isKnownSoldOut(cache, ttlMs, showID) ? notEnoughSeats(count, 0) : null;
}

/** True when this node's fresh list shows the show with no seat left. */
export function isKnownSoldOut(cache: ShowListCache, ttlMs: number, showID: string): boolean {
	const fresh = cache.shows && Date.now() - cache.fetchedAt < ttlMs;
	const show = fresh ? cache.byId.get(showID) : undefined;
	return show !== undefined && show.available <= 0;
}

/**
 * Events may have been missed (this node was cut off, or a shows node wrote before it knew of
 * this one): refetch on the next read, and keep no fetch that was already on its way.
 */
export function forgetShows(cache: ShowListCache): void {
	cache.forgotten++;
	cache.refreshing = null;
	cache.shows = null;
	cache.firstPage = null;
	cache.answers.clear();
}
