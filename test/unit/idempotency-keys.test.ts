/**
 * Idempotency-Key records in the reservations service: the first request with a key decides its
 * checkout, concurrent ones agree, old derived-id bookings are adopted inside the window, and
 * records older than the window are removed. Also: NATS credentials in the configuration.
 */
import type { ServiceBroker } from "moleculer";
import type { SideCollection } from "../../lib/store/store-api";
import { claimKey, type IdempotencyKeyDoc } from "../../lib/checkout/idempotency-keys";
import { ConfigError, loadAppConfig } from "../../lib/common/config";
import { newId, reservationsSchema, settle, showsSchema, startBroker } from "./helpers";

const HOUR = 60 * 60 * 1000;

interface ReservationsInternals {
	side: { idempotency_keys: SideCollection };
	keysPurgedAt: number;
	reconcileCheckouts(): Promise<void>;
}

function claim(broker: ServiceBroker, keyHash: string, checkoutId: string, fingerprint = "fp") {
	return broker.call<IdempotencyKeyDoc & { created: boolean }, object>(
		"reservations.claimIdempotencyKey",
		{ keyHash, checkoutId, fingerprint, legacyId: "legacy-none" }
	);
}

const hash = () =>
	newId("")
		.replace(/[^0-9a-f]/g, "")
		.padEnd(64, "0")
		.slice(0, 64);

describe("Idempotency-Key records", () => {
	let broker: ServiceBroker;
	let reservations: ReservationsInternals;

	beforeAll(async () => {
		broker = await startBroker([showsSchema(), reservationsSchema()]);
		reservations = broker.getLocalService("reservations") as unknown as ReservationsInternals;
	});

	afterAll(async () => {
		await broker.stop();
	});

	it("the first claim of a key decides its checkout; a later one learns it", async () => {
		const key = hash();
		expect(await claim(broker, key, "checkout-first", "fp-1")).toMatchObject({
			checkoutId: "checkout-first",
			fingerprint: "fp-1",
			created: true
		});
		expect(await claim(broker, key, "checkout-second", "fp-2")).toMatchObject({
			checkoutId: "checkout-first",
			fingerprint: "fp-1",
			created: false
		});
	});

	it("20 concurrent claims of one key agree on one checkout, and exactly one is created", async () => {
		const key = hash();
		const { ok, errors } = await settle(
			Array.from({ length: 20 }, (_, i) => claim(broker, key, `checkout-race-${i}`))
		);
		expect(errors).toEqual([]);
		expect(ok.filter(c => c.created)).toHaveLength(1);
		expect(new Set(ok.map(c => c.checkoutId)).size).toBe(1);
	});

	it("a booking whose id an older version derived from the key is adopted only inside the window", async () => {
		const keys = reservations.side.idempotency_keys;
		const now = Date.now();
		const wanted = (id: string) => ({
			_id: hash(),
			checkoutId: id,
			fingerprint: "fp",
			createdAt: now
		});
		const recent = { _id: "legacy-recent", fingerprint: "fp-old", createdAt: now - HOUR };
		expect(await claimKey(keys, wanted("new-1"), async () => recent, 24 * HOUR)).toMatchObject({
			checkoutId: "legacy-recent",
			fingerprint: "fp-old",
			created: false
		});
		const stale = { ...recent, _id: "legacy-stale", createdAt: now - 25 * HOUR };
		expect(await claimKey(keys, wanted("new-2"), async () => stale, 24 * HOUR)).toMatchObject({
			checkoutId: "new-2",
			created: true
		});
	});

	it("records older than IDEMPOTENCY_KEY_HOURS are removed by the reconciler; newer ones stay", async () => {
		const keys = reservations.side.idempotency_keys;
		const old = hash();
		const fresh = hash();
		await keys.insertOnce({
			_id: old,
			checkoutId: "c-old",
			fingerprint: "f",
			createdAt: Date.now() - 25 * HOUR
		});
		await keys.insertOnce({
			_id: fresh,
			checkoutId: "c-new",
			fingerprint: "f",
			createdAt: Date.now() - 23 * HOUR
		});
		reservations.keysPurgedAt = 0;
		await reservations.reconcileCheckouts();
		expect(await keys.findById(old)).toBeNull();
		expect(await keys.findById(fresh)).toMatchObject({ checkoutId: "c-new" });
	});
});

describe("NATS credentials in the configuration", () => {
	it("come from NATS_USER/NATS_PASSWORD or NATS_TOKEN", () => {
		expect(loadAppConfig({ NATS_USER: "u", NATS_PASSWORD: "p" }, []).natsAuth).toEqual({
			user: "u",
			pass: "p"
		});
		expect(loadAppConfig({ NATS_TOKEN: "t" }, []).natsAuth).toEqual({ token: "t" });
		expect(loadAppConfig({}, []).natsAuth).toEqual({});
	});

	it("half a pair, or both kinds, stop the process with a clear message", () => {
		expect(() => loadAppConfig({ NATS_USER: "u" }, [])).toThrow(ConfigError);
		expect(() => loadAppConfig({ NATS_PASSWORD: "p" }, [])).toThrow(
			/NATS_USER and NATS_PASSWORD/
		);
		expect(() =>
			loadAppConfig({ NATS_TOKEN: "t", NATS_USER: "u", NATS_PASSWORD: "p" }, [])
		).toThrow(ConfigError);
	});

	it("a bad TRANSPORTER is refused without repeating its password", () => {
		expect(() => loadAppConfig({ TRANSPORTER: "http://user:hunter2@host:4222" }, [])).toThrow(
			expect.objectContaining({ message: expect.not.stringContaining("hunter2") })
		);
	});
});
