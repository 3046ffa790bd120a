/**
 * Checkout load against a real cluster while a fault runs, and the invariants every fault test ends
 * with, once things settle:
 *  - every 2xx booking exists, confirmed (or canceled, if the load canceled it);
 *  - each show's counted seats equal the seats of its confirmed reservations plus its live holds;
 *  - no answer was a 5xx other than 503, each with Retry-After, and none hung;
 *  - the system serves checkouts again.
 */
import crypto from "node:crypto";
import { openStores } from "./probe";
import { gatewayPool, type GatewayPool } from "./gateway-pool";
import { waitForHealthy, type Cluster } from "./system";

export interface CheckoutAnswer {
	/** A cancel (`DELETE /reservations/:id`) of a booking the load made; else a checkout. */
	kind?: "cancel";
	/** The reservation a cancel was for. */
	reservationId?: string;
	/** The Idempotency-Key a checkout was sent with. */
	idempotencyKey?: string;
	status: number;
	body: any;
	retryAfter: string | null;
	/** When the request was sent (epoch ms), and how long the client waited for the answer. */
	sentAt: number;
	ms: number;
}

export interface LoadOptions {
	/** Seconds an unconfirmed hold lives in this cluster (its HOLD_TTL). */
	holdTtlS: number;
	concurrency?: number;
	/** Longest a client waits before counting the checkout as hung (status 0). */
	clientTimeoutMs?: number;
	/** The gateways the clients reach, as a load balancer spreads them; the cluster's one by default. */
	gateways?: GatewayPool;
	/** Each client cancels every Nth booking it makes (0: none). */
	cancelEvery?: number;
	/**
	 * Each checkout carries an Idempotency-Key and is sent again with it after a 503, once its
	 * Retry-After has passed, as a careful client does.
	 */
	keyed?: boolean;
}

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

/** How long a settled state must last: past a step's timeout in these tests (3 s). */
const LATE_STEP_MS = 4000;

export function checkoutLoad(cluster: Cluster, options: LoadOptions) {
	const concurrency = options.concurrency ?? 16;
	const clientTimeoutMs = options.clientTimeoutMs ?? 30000;
	const gateways = options.gateways ?? gatewayPool([cluster.baseUrl]);
	const cancelEvery = options.cancelEvery ?? 0;

	/** One request through the gateways; a hang or a dropped connection answers status 0. */
	async function send(route: string, init: RequestInit): Promise<CheckoutAnswer> {
		const started = Date.now();
		try {
			return await gateways.send(async baseUrl => {
				const res = await fetch(`${baseUrl}${route}`, {
					...init,
					signal: AbortSignal.timeout(clientTimeoutMs)
				});
				const body = await res.json();
				const retryAfter = res.headers.get("retry-after");
				return {
					status: res.status,
					body,
					retryAfter,
					sentAt: started,
					ms: Date.now() - started
				};
			});
		} catch (err) {
			// The invariants count it as a failure.
			const ms = Date.now() - started;
			return { status: 0, body: String(err), retryAfter: null, sentAt: started, ms };
		}
	}

	function reserve(showID: string, count: number, key?: string): Promise<CheckoutAnswer> {
		return send("/reserve", {
			method: "POST",
			headers: {
				"content-type": "application/json",
				...(key ? { "idempotency-key": key } : {})
			},
			body: JSON.stringify({ name: "Load", count, showID })
		});
	}

	/** Sends a request again after each 503 (a few times), once its Retry-After has passed. */
	async function retried(sendOnce: () => Promise<CheckoutAnswer>): Promise<CheckoutAnswer[]> {
		const answers: CheckoutAnswer[] = [];
		for (let tries = 0; tries < 5; tries++) {
			const answer = await sendOnce();
			answers.push(answer);
			if (answer.status !== 503) break;
			await sleep(Number(answer.retryAfter ?? 1) * 1000);
		}
		return answers;
	}

	/** Cancels a booking as a client would: again after a 503. */
	function cancel(id: string): Promise<CheckoutAnswer[]> {
		return retried(async () => ({
			...(await send(`/reservations/${id}`, { method: "DELETE" })),
			kind: "cancel" as const,
			reservationId: id
		}));
	}

	/** A checkout with a key of its own, sent again with it after a 503. */
	function keyedCheckout(showID: string, count: number): Promise<CheckoutAnswer[]> {
		const key = `load-${crypto.randomBytes(12).toString("hex")}`;
		return retried(async () => ({
			...(await reserve(showID, count, key)),
			idempotencyKey: key
		}));
	}

	/** A checkout by a client that honours Retry-After: a 503 is tried again, up to `tries` times. */
	async function reservePatiently(showID: string, count: number, tries = 15) {
		let answer = await reserve(showID, count);
		for (let i = 0; answer.status === 503 && i < tries; i++) {
			await sleep(Number(answer.body?.retryAfter ?? 2) * 1000);
			answer = await reserve(showID, count);
		}
		return answer;
	}

	/**
	 * Runs checkouts on `showIds` from every client while `fault` runs, then returns every answer.
	 * The fault starts once the load books, so that there are bookings made before it to check.
	 */
	async function loadDuring(
		showIds: string[],
		fault: () => Promise<void>
	): Promise<CheckoutAnswer[]> {
		const answers: CheckoutAnswer[] = [];
		let running = true;
		const clients = Array.from({ length: concurrency }, async (_, c) => {
			for (let i = 0, booked = 0; running; i++) {
				const showID = showIds[(c + i) % showIds.length];
				const count = 1 + (i % 3);
				const sent = options.keyed
					? await keyedCheckout(showID, count)
					: [await reserve(showID, count)];
				answers.push(...sent);
				const answer = sent[sent.length - 1];
				if (answer.status === 201 && cancelEvery > 0 && ++booked % cancelEvery === 0)
					answers.push(...(await cancel(answer.body._id as string)));
			}
		});
		try {
			const deadline = Date.now() + 20000;
			while (!answers.some(a => a.status === 201) && Date.now() < deadline) await sleep(50);
			await fault();
		} finally {
			running = false;
			await Promise.all(clients);
		}
		return answers;
	}

	/**
	 * Waits until no checkout is pending and no hold is unconfirmed: everything has settled. Settled
	 * means so twice, a few seconds apart: a step that a fault delayed (a request buffered by a NATS
	 * client while it reconnected) may still open a checkout after its client had its answer.
	 */
	async function settle(extraMs = 30000) {
		const stores = await openStores(cluster);
		try {
			const deadline = Date.now() + options.holdTtlS * 1000 + extraMs;
			let settledSince: number | null = null;
			for (;;) {
				const pending = await stores.openCheckouts.countDocuments({});
				const unreleased = await stores.seatReleases.countDocuments({});
				const shows = await stores.shows.find({ nextExpiry: { $ne: null } }).toArray();
				if (pending === 0 && unreleased === 0 && shows.length === 0) {
					settledSince ??= Date.now();
					if (Date.now() - settledSince >= LATE_STEP_MS) return;
				} else settledSince = null;
				if (Date.now() > deadline)
					throw new Error(
						`not settled: ${pending} pending, ${unreleased} unreleased, ${shows.length} shows with holds`
					);
				await sleep(500);
			}
		} finally {
			await stores.close();
		}
	}

	/** Answers by status (and error type), e.g. `201: 310, 503 SERVICE_NOT_AVAILABLE: 12`. */
	function summarize(answers: CheckoutAnswer[]): string {
		const statuses = new Map<string | number, number>();
		for (const a of answers) {
			const kind = a.kind === "cancel" ? "cancel " : "";
			const ok = a.status === 201 || (a.kind === "cancel" && a.status === 200);
			const key = `${kind}${a.status}${ok ? "" : ` ${a.body?.type ?? a.body}`}`;
			statuses.set(key, (statuses.get(key) ?? 0) + 1);
		}
		return [...statuses].map(([s, n]) => `${s}: ${n}`).join(", ");
	}

	/** The seat and booking invariants on `showIds`, then a checkout that succeeds again. */
	async function expectInvariants(answers: CheckoutAnswer[], showIds: string[]) {
		console.log(`answers — ${summarize(answers)}`);

		const checkouts = answers.filter(a => a.kind !== "cancel");
		const cancels = answers.filter(a => a.kind === "cancel");
		for (const a of checkouts) expect([201, 409, 503]).toContain(a.status);
		for (const a of cancels) expect([200, 503]).toContain(a.status);
		for (const a of answers.filter(a => a.status === 503)) expect(a.retryAfter).toBeTruthy();
		const booked = checkouts.filter(a => a.status === 201).map(a => a.body._id as string);
		expect(booked.length).toBeGreaterThan(0);
		// One key, one booking, however often it was sent.
		const bookingOfKey = new Map<string, string>();
		for (const a of checkouts.filter(a => a.idempotencyKey && a.status === 201)) {
			bookingOfKey.set(a.idempotencyKey!, bookingOfKey.get(a.idempotencyKey!) ?? a.body._id);
			expect(a.body._id).toBe(bookingOfKey.get(a.idempotencyKey!));
		}
		const canceled = new Set(cancels.filter(a => a.status === 200).map(a => a.reservationId));
		// A cancel answered only 503 may or may not have happened.
		const maybeCanceled = new Set(cancels.map(a => a.reservationId));

		const stores = await openStores(cluster);
		try {
			const all = await stores.reservationsWithStatus();
			const confirmed = all.filter(r => r.status === "confirmed");
			const statusOf = new Map(all.map(r => [r._id as string, r.status]));
			for (const id of booked) {
				const wanted = canceled.has(id)
					? ["canceled"]
					: maybeCanceled.has(id)
						? ["confirmed", "canceled"]
						: ["confirmed"];
				expect(wanted).toContain(statusOf.get(id));
			}
			expect(all.filter(r => r.status === "pending")).toHaveLength(0);

			for (const showID of showIds) {
				const { show, liveHolds, soldIds, soldSeats } = await stores.seatsOf(showID);
				const sold = confirmed.filter(r => r.showID === showID);
				const seats = sold.reduce((sum: number, r: any) => sum + r.guests, 0);
				const held = liveHolds.reduce((sum: number, h: any) => sum + h.count, 0);
				expect(show.reserved - show.presold).toBe(seats + held);
				expect(soldSeats).toBe(seats);
				expect(show.reserved).toBeLessThanOrEqual(show.houseSize);
				expect(soldIds).toEqual(new Set(sold.map(r => r._id)));
			}
		} finally {
			await stores.close();
		}

		// Serving again, as a client that honours Retry-After sees it (a circuit breaker that
		// opened during the fault closes after its half-open wait).
		for (const url of gateways.live()) await waitForHealthy(url, undefined, 30000);
		expect((await reservePatiently(showIds[0], 1)).status).toBe(201);
	}

	return { reserve, reservePatiently, cancel, loadDuring, settle, summarize, expectInvariants };
}
