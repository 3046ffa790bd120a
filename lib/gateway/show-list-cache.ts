/**
 * The gateway's cached show list: filled in pages from `shows.list`, patched in place by
 * `shows.changed` events, and trusted no longer than a safety TTL in case an event was missed.
 */
import type { Context } from "moleculer";
import { notEnoughSeats } from "../common/errors";
import type { PublicShow } from "../common/types";

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
	/** Bumped by every change event, so a fetch that raced a change is not cached. */
	generation: number;
	refreshing: Promise<PublicShow[]> | null;
	/** Serialised answers (lib/gateway/show-reads.ts), dropped whenever what they show changes. */
	firstPage: ReadAnswer | null;
	answers: Map<string, ReadAnswer>;
	/** The newest document version applied per show, from events and answers. */
	versions: Map<string, number>;
}

export function createShowListCache(): ShowListCache {
	return {
		shows: null,
		byId: new Map(),
		fetchedAt: 0,
		generation: 0,
		refreshing: null,
		firstPage: null,
		answers: new Map(),
		versions: new Map()
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
	const generation = cache.generation;
	const refresh = (async () => {
		const shows: PublicShow[] = [];
		for (;;) {
			const page = await ctx.call<PublicShow[], object>("shows.list", {
				offset: shows.length,
				limit: FETCH_PAGE
			});
			shows.push(...page);
			if (page.length < FETCH_PAGE) break;
		}
		if (cache.generation === generation) {
			cache.shows = shows;
			cache.byId = new Map(shows.map(s => [s._id, s]));
			cache.fetchedAt = Date.now();
			cache.firstPage = null;
			cache.answers.clear();
		}
		return shows;
	})();
	cache.refreshing = refresh;
	const clear = () => {
		if (cache.refreshing === refresh) cache.refreshing = null;
	};
	refresh.then(clear, clear);
	return refresh;
}

/**
 * A show's seats or size changed somewhere: patch the cached list in place. A state older than
 * one already applied (an event that arrives after a newer answer or event) is dropped.
 */
export function patchShow(cache: ShowListCache, show: PublicShow & { version?: number }): void {
	const known = cache.versions.get(show._id);
	if (show.version !== undefined) {
		if (known !== undefined && known >= show.version) return;
		cache.versions.set(show._id, show.version);
	}
	cache.generation++;
	cache.firstPage = null;
	cache.answers.delete(show._id);
	if (!cache.shows) return;
	const cached = cache.byId.get(show._id);
	const { _id, name, houseSize, reserved, available } = show;
	// A new show: refetch, so the list keeps the store's order.
	if (cached) Object.assign(cached, { _id, name, houseSize, reserved, available });
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

/** Events may have been missed (this node was cut off): refetch on the next read. */
export function forgetShows(cache: ShowListCache): void {
	cache.shows = null;
	cache.firstPage = null;
	cache.answers.clear();
}
