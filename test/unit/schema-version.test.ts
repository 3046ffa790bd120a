/**
 * What this release writes says its schema version, so that the release after it can tell its
 * documents and packets from the previous release's (docs/api.md, "Upgrades"): stored documents
 * carry `schemaVersion`, and every call and event carries it in `ctx.meta`. A node of the previous
 * release sends and stores none, and is read as version 1.
 */
import { ServiceBroker, type Context, type ServiceSchema } from "moleculer";
import brokerConfig from "../../moleculer.config";
import { SCHEMA_VERSION } from "../../lib/common/schema-version";
import type { ShowDoc } from "../../lib/shows/show-seats";
import {
	createShow,
	eventually,
	newId,
	reservationsSchema,
	showsSchema,
	startBroker
} from "./helpers";

type Meta = Record<string, unknown>;

/** What a receiver saw of one call or event. */
interface Seen {
	sender: unknown;
	meta: Meta;
}

/** A service that reports what each call and event it takes carried. */
function probeSchema(events: Seen[]): ServiceSchema {
	const seen = (ctx: Context<unknown, Meta>): Seen => ({
		sender: (ctx.locals as Meta).senderSchemaVersion,
		meta: { ...ctx.meta }
	});
	return {
		name: "probe",
		actions: {
			echo: (ctx: Context<unknown, Meta>) => seen(ctx),
			/** Asks another action, as a service that calls on does. */
			relay: async (ctx: Context<unknown, Meta>) => ({
				...seen(ctx),
				inner: await ctx.call<Seen, object>("probe.echo", {})
			})
		},
		events: {
			"probe.happened": (ctx: Context<unknown, Meta>) => void events.push(seen(ctx))
		}
	};
}

/** A node of this release (the broker options it runs with), on an in-memory transporter. */
function thisRelease(nodeID: string, namespace: string): ServiceBroker {
	return new ServiceBroker({
		nodeID,
		namespace,
		logger: false,
		transporter: "Fake",
		middlewares: brokerConfig.middlewares
	});
}

/** A node of the previous release: it knows no schema versions. */
function previousRelease(nodeID: string, namespace: string): ServiceBroker {
	return new ServiceBroker({ nodeID, namespace, logger: false, transporter: "Fake" });
}

describe("packets carry the schema version of their sender in ctx.meta", () => {
	const namespace = `schema-${newId()}`;
	const events: Seen[] = [];
	let receiver: ServiceBroker;
	let sender: ServiceBroker;
	let oldSender: ServiceBroker;

	beforeAll(async () => {
		receiver = thisRelease("receiver", namespace);
		receiver.createService(probeSchema(events));
		sender = thisRelease("sender", namespace);
		oldSender = previousRelease("old-sender", namespace);
		await Promise.all([receiver.start(), sender.start(), oldSender.start()]);
		await Promise.all([sender, oldSender].map(b => b.waitForServices("probe", 10000)));
	});

	afterAll(async () => {
		await Promise.all([receiver, sender, oldSender].map(b => b?.stop()));
	});

	it("a call and an event from a node of this release say its version", async () => {
		const answer = await sender.call<Seen, object>("probe.echo", {});
		expect(answer.sender).toBe(SCHEMA_VERSION);
		await sender.broadcast("probe.happened", {});
		await sender.emit("probe.happened", {}, { groups: ["probe"] });
		await eventually("both events are heard", async () => events.length === 2);
		expect(events.map(e => e.meta.schemaVersion)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION]);
		expect(events.map(e => e.sender)).toEqual([SCHEMA_VERSION, SCHEMA_VERSION]);
	});

	it("a call from a node of the previous release, with no version, is served and read as version 1; the version of the calls it leads to does not travel back into its meta", async () => {
		const ctx = oldSender.ContextFactory.create(oldSender, null as never, {}, {});
		const answer = await ctx.call<Seen & { inner: Seen }, object>("probe.relay", {});
		expect(answer.sender).toBe(1);
		// What the receiver sends on is its own ...
		expect(answer.inner.sender).toBe(SCHEMA_VERSION);
		// ... and stays there: Moleculer merges a callee's meta back into its caller's.
		expect(ctx.meta).not.toHaveProperty("schemaVersion");
	});
});

describe("documents this release stores carry its schema version", () => {
	let broker: ServiceBroker;

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), reservationsSchema()]);
	});

	afterAll(async () => {
		await broker.stop();
	});

	function store(name: string) {
		return broker.getLocalService(name) as unknown as {
			adapter: { findById(id: string): Promise<ShowDoc & Meta> };
			updateWhere(query: Meta, update: Meta): Promise<number>;
			side: Record<string, { findById<T>(id: string): Promise<T | null> }>;
		};
	}

	it("a new show, and each write to a show, say this release's version", async () => {
		const show = await createShow(broker, 10);
		expect((await store("shows").adapter.findById(show._id)).schemaVersion).toBe(
			SCHEMA_VERSION
		);
		await store("shows").updateWhere({ _id: show._id }, { $unset: { schemaVersion: true } });
		await broker.call("shows.holdSeats", { showID: show._id, holdId: newId(), count: 2 });
		expect((await store("shows").adapter.findById(show._id)).schemaVersion).toBe(
			SCHEMA_VERSION
		);
	});

	it("a show last written by a later release keeps what this one does not know, and says this release wrote it last", async () => {
		const show = await createShow(broker, 10);
		await store("shows").updateWhere(
			{ _id: show._id },
			{ $set: { schemaVersion: SCHEMA_VERSION + 1, rows: ["A", "B"] } }
		);
		const holdId = newId();
		await broker.call("shows.holdSeats", { showID: show._id, holdId, count: 2 });
		await broker.call("shows.confirmHold", { showID: show._id, holdId });
		const doc = await store("shows").adapter.findById(show._id);
		expect(doc.rows).toEqual(["A", "B"]);
		expect(doc.schemaVersion).toBe(SCHEMA_VERSION);
		expect(doc.reserved).toBe(2);
	});

	it("a booking and its facts say this release's version", async () => {
		const show = await createShow(broker, 10);
		const checkoutId = newId();
		await broker.call("reservations.create", {
			checkoutId,
			showID: show._id,
			name: "Ann",
			guests: 1,
			fingerprint: "f"
		});
		await broker.call("reservations.fail", { id: checkoutId, reason: "test" });
		const side = store("reservations").side;
		const booking = await side.reservations.findById<Meta>(checkoutId);
		const outcome = await side.reservation_states.findById<Meta>(`${checkoutId}:outcome`);
		expect(booking?.schemaVersion).toBe(SCHEMA_VERSION);
		expect(outcome?.schemaVersion).toBe(SCHEMA_VERSION);
	});
});
