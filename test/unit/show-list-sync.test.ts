/**
 * How the gateway's show list stays true while shows change under it: a fetch that events raced is
 * mended by them and kept, a fetch begun before the list was forgotten is not kept, and a shows node
 * tells a gateway it has just come to know to read its list again.
 */
import type { Context, ServiceBroker } from "moleculer";
import {
	createShowListCache,
	forgetShows,
	loadShows,
	patchShow
} from "../../lib/gateway/show-list-cache";
import { createChangeListeners } from "../../lib/shows/change-listeners";
import { apiSchema, reservationsSchema, showsSchema, startBroker } from "./helpers";
import type { PublicShow, ShowState } from "../../lib/common/types";

const TTL = 3600000;

function state(_id: string, reserved: number, version: number): ShowState {
	return { _id, name: `Show ${_id}`, houseSize: 10, reserved, available: 10 - reserved, version };
}

/** A context whose `shows.list` answers only when the test says so. */
function pendingList() {
	let answer: (shows: ShowState[]) => void = () => undefined;
	const calls: unknown[] = [];
	const ctx = {
		meta: {},
		call: (action: string, params: unknown, opts: unknown) => {
			calls.push({ action, params, opts });
			return new Promise<ShowState[]>(resolve => (answer = resolve));
		}
	} as unknown as Context;
	return { ctx, calls, answer: (shows: ShowState[]) => answer(shows) };
}

const seats = (shows: PublicShow[]) => shows.map(s => `${s._id}:${s.reserved}`);

describe("show list: a fetch raced by changes", () => {
	it("asks shows for each show's version in meta, which an older shows node ignores", async () => {
		const cache = createShowListCache();
		const list = pendingList();
		const loading = loadShows(cache, list.ctx, TTL);
		list.answer([state("a", 0, 1)]);
		await loading;
		expect(list.calls).toEqual([
			{
				action: "shows.list",
				params: { offset: 0, limit: 5000 },
				opts: { meta: { showVersions: true } }
			}
		]);
	});

	it("keeps a list that events moved on while it was fetched, with their newer states", async () => {
		const cache = createShowListCache();
		const list = pendingList();
		const loading = loadShows(cache, list.ctx, TTL);
		patchShow(cache, state("a", 4, 3)); // a booking, after the store was read
		patchShow(cache, state("b", 1, 1)); // an older state than the store's
		list.answer([state("a", 2, 2), state("b", 3, 5)]);
		expect(seats(await loading)).toEqual(["a:4", "b:3"]);
		expect(seats(cache.shows!)).toEqual(["a:4", "b:3"]);
		// Without a version field: what is public, and nothing else.
		expect(Object.keys(cache.shows![0]).sort()).toEqual(
			["_id", "available", "houseSize", "name", "reserved"].sort()
		);
		// The list is trusted: the next read needs no fetch.
		expect(await loadShows(cache, list.ctx, TTL)).toBe(cache.shows);
	});

	it("adds a show created while the list was fetched, in the store's order", async () => {
		const cache = createShowListCache();
		const list = pendingList();
		const loading = loadShows(cache, list.ctx, TTL);
		patchShow(cache, state("b", 0, 1));
		list.answer([state("a", 0, 1), state("c", 0, 1)]);
		expect(seats(await loading)).toEqual(["a:0", "b:0", "c:0"]);
	});

	it("drops an event older than the fetched state that arrives after it", async () => {
		const cache = createShowListCache();
		const list = pendingList();
		const loading = loadShows(cache, list.ctx, TTL);
		list.answer([state("a", 5, 7)]);
		await loading;
		patchShow(cache, state("a", 1, 6));
		expect(seats(cache.shows!)).toEqual(["a:5"]);
	});

	it("does not keep a fetch begun before the list was forgotten, and reads anew", async () => {
		const cache = createShowListCache();
		const first = pendingList();
		const loading = loadShows(cache, first.ctx, TTL);
		forgetShows(cache); // events were missed: whatever was on its way may lack them
		const second = pendingList();
		const reloading = loadShows(cache, second.ctx, TTL);
		first.answer([state("a", 0, 1)]);
		await loading;
		expect(cache.shows).toBeNull();
		second.answer([state("a", 6, 2)]);
		expect(seats(await reloading)).toEqual(["a:6"]);
		expect(seats(cache.shows!)).toEqual(["a:6"]);
	});

	it("from a shows node without versions, keeps only a fetch that no change raced", async () => {
		const cache = createShowListCache();
		const unversioned = (_id: string, reserved: number) =>
			({
				_id,
				name: `Show ${_id}`,
				houseSize: 10,
				reserved,
				available: 10 - reserved
			}) as ShowState;
		const raced = pendingList();
		const loading = loadShows(cache, raced.ctx, TTL);
		patchShow(cache, unversioned("a", 4));
		raced.answer([unversioned("a", 0)]);
		await loading;
		expect(cache.shows).toBeNull();
		const calm = pendingList();
		const reloading = loadShows(cache, calm.ctx, TTL);
		calm.answer([unversioned("a", 4)]);
		await reloading;
		expect(seats(cache.shows!)).toEqual(["a:4"]);
	});
});

describe("shows: the gateways it sends its changes to", () => {
	const gateway = (id: string) => ({ id, services: [{ events: { "shows.changed": {} } }] });

	function listeners() {
		const sent: [string, unknown][] = [];
		const broker = {
			broadcast: (event: string, payload: unknown) => void sent.push([event, payload])
		} as unknown as ServiceBroker;
		return { sent, changes: createChangeListeners(broker) };
	}

	it("tells a gateway it comes to know after a change to read its list again, once", () => {
		const { sent, changes } = listeners();
		changes.changed(state("a", 1, 2));
		changes.announced(gateway("api-1"));
		changes.announced(gateway("api-1")); // announced again, as on every INFO it sends
		expect(sent).toEqual([
			["shows.changed", state("a", 1, 2)],
			["shows.resync", { nodeIDs: ["api-1"] }]
		]);
	});

	it("tells it again when it comes back after it was given up", () => {
		const { sent, changes } = listeners();
		changes.changed(state("a", 1, 2));
		changes.announced(gateway("api-1"));
		changes.left("api-1");
		changes.announced(gateway("api-1"));
		expect(sent.filter(([event]) => event === "shows.resync")).toHaveLength(2);
	});

	it("tells every gateway it knows to read again when its own link comes back after a change", () => {
		const { sent, changes } = listeners();
		changes.announced(gateway("api-1"));
		changes.announced(gateway("api-2"));
		changes.reconnected(); // nothing sent yet: nothing lost
		changes.changed(state("a", 1, 2));
		changes.reconnected();
		expect(sent.filter(([event]) => event === "shows.resync")).toEqual([
			["shows.resync", { nodeIDs: ["api-1", "api-2"] }]
		]);
	});

	it("tells nothing to a node that does not listen, nor before it sent any change", () => {
		const { sent, changes } = listeners();
		changes.announced(gateway("api-1"));
		changes.changed(state("a", 1, 2));
		changes.announced({ id: "reservations-1", services: [{ events: {} }] });
		changes.announced({ id: "operator" });
		expect(sent).toEqual([["shows.changed", state("a", 1, 2)]]);
	});
});

describe("shows.list: versions for the gateways that ask", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("answers each show's version when meta asks, and only the public fields otherwise", async () => {
		const plain = (await broker.call("shows.list", {})) as object[];
		const versioned = (await broker.call(
			"shows.list",
			{},
			{ meta: { showVersions: true } }
		)) as ShowState[];
		// A gateway of an older release serves the plain list as it comes.
		expect(Object.keys(plain[0]).sort()).toEqual(
			["_id", "available", "houseSize", "name", "reserved"].sort()
		);
		expect(versioned.map(s => typeof s.version)).toEqual(plain.map(() => "number"));
	});
});

describe("the gateway's list fetch and ctx.meta", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		const reader = {
			name: "reader",
			actions: {
				async read(ctx: Context) {
					await ctx.call("api.listShows", {});
					return ctx.meta;
				}
			}
		};
		broker = await startBroker([showsSchema(), reservationsSchema(), apiSchema(), reader]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("leaves the versions flag in no reader's meta, to go on to its other calls", async () => {
		expect(await broker.call("reader.read", {})).not.toHaveProperty("showVersions");
	});
});
