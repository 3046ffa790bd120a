/**
 * The checkout saga the gateway runs, keyed by a random checkout id (an Idempotency-Key maps to the
 * first request's id through reservations' key records). Its steps, their undo actions and what an
 * unknown outcome means are the table of lib/checkout/saga-steps.ts:
 *   hold seats (shows) → record the reservation as pending (reservations) → confirm the hold, the
 *   pivot after which the seats are sold → confirm the reservation.
 * Every step is idempotent by the checkout id, so a retry or a replay changes nothing. A failure
 * before the pivot releases what this attempt held; a failure whose outcome is unknown leaves the
 * checkout pending, for the reservations reconciler to settle by where its seats stand. A refusal
 * decided before any seat is held (unknown show, not enough seats) leaves no reservation behind.
 */
import crypto from "node:crypto";
import type { CallingOptions, Context, ServiceBroker } from "moleculer";
import { checkoutFailed, idempotencyKeyReused, tooManyTickets } from "../common/errors";
import type { HoldState, HoldView, Reservation, ReservationDoc } from "../common/types";
import { CHECKOUT_STEPS, FAIL_CHECKOUT } from "./saga-steps";

export interface CheckoutParams {
	showID: string;
	name: string;
	count: number;
}

export interface CheckoutMeta {
	idempotencyKey?: string;
	/**
	 * When the checkout's time is up (epoch ms); every step carries it, and shows refuses a step
	 * that arrives later (plus the clock-skew allowance), so a late step holds no seat.
	 */
	deadline?: number;
	$statusCode?: number;
	$location?: string;
	$responseHeaders?: Record<string, string>;
}

export interface BookingAnswer {
	success: true;
	_id: string;
	showID: string;
	name: string;
	guests: number;
	status: Reservation["status"];
}

/** What the saga needs from the service that runs it. */
interface SagaHost {
	broker: ServiceBroker;
	logger: { warn(...args: unknown[]): void };
}

/**
 * Options of a step: it waits at most the broker's request timeout (and never past the checkout's
 * budget), so that a request lost on its way (with a NATS server that died) fails in time to be
 * retried. Without it Moleculer gives a nested call the whole rest of the budget to wait in.
 */
function step(ctx: Context, extra: CallingOptions = {}): CallingOptions {
	const timeout = ctx.broker.options.requestTimeout;
	return timeout ? { timeout, ...extra } : extra;
}

function sha256(text: string): string {
	return crypto.createHash("sha256").update(text).digest("hex");
}

/** 128 random bits: the only way to read or cancel the booking, so never derived from input. */
function newCheckoutId(): string {
	return crypto.randomBytes(16).toString("hex");
}

function isClientError(err: unknown): boolean {
	const code = (err as { code?: number }).code ?? 500;
	return code >= 400 && code < 500 && !(err as { retryable?: boolean }).retryable;
}

function bookingAnswer(reservation: Reservation): BookingAnswer {
	return {
		success: true,
		_id: reservation._id,
		showID: reservation.showID,
		name: reservation.name,
		guests: reservation.guests,
		status: reservation.status
	};
}

/** A checkout as `POST /reserve` asks for it: new, replayed by its key, or resumed. */
export async function runCheckout(
	host: SagaHost,
	ctx: Context<CheckoutParams, CheckoutMeta>,
	maxTicketsPerOrder: number,
	timeoutMs: number
): Promise<BookingAnswer> {
	const { showID, name, count } = ctx.params;
	ctx.meta.deadline = Date.now() + timeoutMs;
	if (count > maxTicketsPerOrder) throw tooManyTickets(count, maxTicketsPerOrder);
	const fingerprint = sha256(`${showID}\n${name}\n${count}`).slice(0, 32);
	const key = ctx.meta.idempotencyKey;
	if (!key) return resumeCheckout(host, ctx, newCheckoutId(), fingerprint, { shared: false });

	// The key maps to a random checkout id through a record the first request inserts.
	const claim = await ctx.call<
		{ checkoutId: string; fingerprint: string; created: boolean },
		object
	>(
		"reservations.claimIdempotencyKey",
		{
			keyHash: sha256(`idempotency-key-record\n${key}`),
			checkoutId: newCheckoutId(),
			fingerprint,
			legacyId: sha256(`idempotency-key\n${key}`).slice(0, 32)
		},
		step(ctx)
	);
	if (claim.fingerprint !== fingerprint) throw idempotencyKeyReused();
	const checkoutId = claim.checkoutId;
	if (claim.created) return resumeCheckout(host, ctx, checkoutId, fingerprint, { shared: true });
	const earlier = await ctx.call<ReservationDoc | null, object>(
		"reservations.findCheckout",
		{ id: checkoutId },
		step(ctx)
	);
	if (earlier) {
		if (earlier.status === "failed") throw checkoutFailed(checkoutId);
		if (earlier.status !== "pending") {
			ctx.meta.$statusCode = 201;
			ctx.meta.$location = `/reservations/${earlier._id}`;
			ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
			return bookingAnswer(earlier);
		}
	}
	// Pending after an earlier attempt died, or no attempt got as far as recording it (it may
	// have been refused): run (or finish) the saga; every step is idempotent by the checkout id,
	// and `resume` has shows look up seats an earlier attempt may have sold already.
	return resumeCheckout(host, ctx, checkoutId, fingerprint, { shared: true, resume: true });
}

interface AttemptOptions {
	/**
	 * The checkout id comes from an Idempotency-Key, so another request may run this checkout at
	 * the same time: its reservation is recorded only once seats are held, never taken back.
	 */
	shared: boolean;
	/** An earlier attempt may have sold these seats already; shows looks that up. */
	resume?: boolean;
}

async function resumeCheckout(
	host: SagaHost,
	ctx: Context<CheckoutParams, CheckoutMeta>,
	checkoutId: string,
	fingerprint: string,
	{ shared, resume = false }: AttemptOptions
): Promise<BookingAnswer> {
	const { showID, name, count } = ctx.params;
	const hold = () =>
		ctx.call<HoldView & { created: boolean }, object>(
			CHECKOUT_STEPS.hold.action,
			{ showID, holdId: checkoutId, count, resume },
			step(ctx)
		);
	const record = () =>
		ctx.call<{ created: boolean }, object>(
			CHECKOUT_STEPS.record.action,
			{ checkoutId, showID, name, guests: count, fingerprint },
			step(ctx)
		);
	// Nobody else knows a checkout id of a request without a key: its hold and its pending
	// reservation run together (one round trip less), and a refused hold takes the reservation
	// back. A keyed checkout records its reservation after the hold instead, so that a refusal
	// never has one to take back from under another request of the same key.
	const [held, recorded] = shared
		? await holdThenRecord(hold, record)
		: await Promise.allSettled([hold(), record()]);
	if (held.status === "rejected") {
		// Refused (not enough seats, unknown show), or unknown (a timeout): undo a hold in case it
		// happened. Once no seats are held, the checkout it recorded has failed; if that cannot be
		// known now, it stays pending and the reconciler settles it by its seats.
		const refused = isClientError(held.reason);
		const state = refused ? "refused" : await releaseQuietly(host, showID, checkoutId);
		// `confirmed`: an earlier attempt of this checkout sold the seats; never fail that one.
		const noSeats = state !== null && state !== "confirmed";
		if (recorded.status === "fulfilled") {
			if (refused && !shared) await discardOrFail(host, checkoutId);
			else if (noSeats) await failQuietly(host, checkoutId, "no seats held");
		}
		throw held.reason;
	}
	if (recorded.status === "rejected") {
		// Only undo a hold this attempt made: a pre-existing one belongs to an earlier
		// attempt of this checkout, which the reconciler settles.
		if (held.value.created) await releaseQuietly(host, showID, checkoutId);
		throw recorded.reason;
	}

	try {
		await ctx.call(CHECKOUT_STEPS.pivot.action, { showID, holdId: checkoutId }, step(ctx));
	} catch (err) {
		if (isClientError(err)) {
			// The hold expired or the checkout's deadline passed before we got here: whatever
			// is still held goes back, and the checkout failed.
			if (held.value.created) await releaseQuietly(host, showID, checkoutId);
			await failQuietly(host, checkoutId, "hold lost");
		}
		// Otherwise the outcome is unknown: the checkout stays pending for the reconciler.
		throw err;
	}

	// Past the pivot the seats are sold; the confirmation is retried, never compensated.
	const reservation = await ctx.call<Reservation, object>(
		CHECKOUT_STEPS.confirm.action,
		{ id: checkoutId },
		step(ctx, { retries: 3 })
	);
	ctx.meta.$statusCode = 201;
	ctx.meta.$location = `/reservations/${reservation._id}`;
	return bookingAnswer(reservation);
}

/** The hold, then the pending reservation only if seats are held (else it is not tried). */
async function holdThenRecord<H, R>(
	hold: () => Promise<H>,
	record: () => Promise<R>
): Promise<[PromiseSettledResult<H>, PromiseSettledResult<R>]> {
	const [held] = await Promise.allSettled([hold()]);
	if (held.status === "rejected") return [held, held];
	return [held, (await Promise.allSettled([record()]))[0]];
}

/**
 * Takes back the pending reservation of a checkout whose hold was refused: it never held a seat,
 * so nothing of it is kept. If that fails, it is recorded as failed (purged after the key window).
 */
async function discardOrFail(host: SagaHost, id: string): Promise<void> {
	try {
		await host.broker.call(CHECKOUT_STEPS.record.undo, { id }, { timeout: 5000 });
	} catch (err) {
		host.logger.warn(`Refused checkout ${id} not taken back: ${(err as Error).message}`);
		await failQuietly(host, id, "no seats held");
	}
}

/** Records a checkout as failed, or leaves it pending for the reconciler if that fails too. */
async function failQuietly(host: SagaHost, id: string, reason: string): Promise<void> {
	try {
		await host.broker.call(FAIL_CHECKOUT, { id, reason }, { timeout: 5000 });
	} catch (err) {
		host.logger.warn(`Checkout ${id} left for the reconciler: ${(err as Error).message}`);
	}
}

/**
 * Gives back a hold this checkout may have (never sold seats). Resolves to where its seats stood,
 * as shows answered, or null when shows could not be asked now.
 */
async function releaseQuietly(
	host: SagaHost,
	showID: string,
	holdId: string
): Promise<HoldState | null> {
	try {
		// Not through `ctx`: the checkout's time budget may be spent by now.
		const { state } = await host.broker.call<{ state: HoldState }, object>(
			CHECKOUT_STEPS.hold.undo,
			{ showID, holdId, onlyIfHeld: true },
			{ timeout: 5000 }
		);
		return state;
	} catch (err) {
		host.logger.warn(
			`Could not release hold ${holdId} now; it expires by itself: ${(err as Error).message}`
		);
		return null;
	}
}
