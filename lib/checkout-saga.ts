/**
 * The checkout saga the gateway runs, keyed by a random checkout id (an Idempotency-Key maps to the
 * first request's id through reservations' key records):
 *   hold seats (shows) → record the reservation as pending (reservations) → confirm the hold, the
 *   pivot after which the seats are sold → confirm the reservation.
 * Every step is idempotent by the checkout id, so a retry or a replay changes nothing. A failure
 * before the pivot releases what this attempt held; a failure whose outcome is unknown leaves the
 * checkout pending, for the reservations reconciler to settle by where its seats stand.
 */
import crypto from "node:crypto";
import type { Context, ServiceBroker } from "moleculer";
import { checkoutFailed, idempotencyKeyReused, tooManyTickets } from "./errors";
import type { HoldView, Reservation } from "./types";
import type { ReservationDoc } from "../services/reservations.service";

export interface CheckoutParams {
	showID: string;
	name: string;
	count: number;
}

export interface CheckoutMeta {
	idempotencyKey?: string;
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
export interface SagaHost {
	broker: ServiceBroker;
	logger: { warn(...args: unknown[]): void };
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

export function bookingAnswer(reservation: Reservation): BookingAnswer {
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
	maxTicketsPerOrder: number
): Promise<BookingAnswer> {
	const { showID, name, count } = ctx.params;
	if (count > maxTicketsPerOrder) throw tooManyTickets(count, maxTicketsPerOrder);
	const fingerprint = sha256(`${showID}\n${name}\n${count}`).slice(0, 32);
	const key = ctx.meta.idempotencyKey;
	if (!key) return resumeCheckout(host, ctx, newCheckoutId(), fingerprint);

	// The key maps to a random checkout id through a record the first request inserts.
	const claim = await ctx.call<
		{ checkoutId: string; fingerprint: string; created: boolean },
		object
	>("reservations.claimIdempotencyKey", {
		keyHash: sha256(`idempotency-key-record\n${key}`),
		checkoutId: newCheckoutId(),
		fingerprint,
		legacyId: sha256(`idempotency-key\n${key}`).slice(0, 32)
	});
	if (claim.fingerprint !== fingerprint) throw idempotencyKeyReused();
	const checkoutId = claim.checkoutId;
	if (claim.created) return resumeCheckout(host, ctx, checkoutId, fingerprint);
	const earlier = await ctx.call<ReservationDoc | null, object>("reservations.findCheckout", {
		id: checkoutId
	});
	if (earlier) {
		if (earlier.status === "failed") throw checkoutFailed(checkoutId);
		if (earlier.status !== "pending") {
			ctx.meta.$statusCode = 201;
			ctx.meta.$location = `/reservations/${earlier._id}`;
			ctx.meta.$responseHeaders = { "Idempotent-Replayed": "true" };
			return bookingAnswer(earlier);
		}
	}
	// Pending after an earlier attempt died, or the first attempt never got as far as recording
	// it: run (or finish) the saga; every step is idempotent by the checkout id, and `resume`
	// has shows look up seats an earlier attempt may have sold already.
	return resumeCheckout(host, ctx, checkoutId, fingerprint, true);
}

export async function resumeCheckout(
	host: SagaHost,
	ctx: Context<CheckoutParams, CheckoutMeta>,
	checkoutId: string,
	fingerprint: string,
	resume = false
): Promise<BookingAnswer> {
	const { showID, name, count } = ctx.params;
	let hold: HoldView & { created: boolean };
	try {
		// `resume`: an earlier attempt may have sold these seats already; shows looks that up.
		hold = await ctx.call("shows.holdSeats", { showID, holdId: checkoutId, count, resume });
	} catch (err) {
		// A timeout leaves it unknown whether the hold happened: undo it in case it did.
		if (!isClientError(err)) await releaseQuietly(host, showID, checkoutId);
		throw err;
	}

	try {
		await ctx.call("reservations.create", {
			checkoutId,
			showID,
			name,
			guests: count,
			fingerprint
		});
	} catch (err) {
		// Only undo a hold this attempt made: a pre-existing one belongs to an earlier
		// attempt of this checkout, which the reconciler settles.
		if (hold.created) await releaseQuietly(host, showID, checkoutId);
		throw err;
	}

	try {
		await ctx.call("shows.confirmHold", { showID, holdId: checkoutId });
	} catch (err) {
		if (isClientError(err)) {
			// The hold expired before we got here: the seats are gone, the checkout failed.
			await ctx
				.call("reservations.fail", { id: checkoutId, reason: "hold lost" })
				.catch(() => undefined);
		}
		// Otherwise the outcome is unknown: the checkout stays pending for the reconciler.
		throw err;
	}

	// Past the pivot the seats are sold; the confirmation is retried, never compensated.
	const reservation = await ctx.call<Reservation, object>(
		"reservations.confirm",
		{ id: checkoutId },
		{ retries: 3 }
	);
	ctx.meta.$statusCode = 201;
	ctx.meta.$location = `/reservations/${reservation._id}`;
	return bookingAnswer(reservation);
}

export async function releaseQuietly(
	host: SagaHost,
	showID: string,
	holdId: string
): Promise<void> {
	try {
		// Not through `ctx`: the checkout's time budget may be spent by now.
		await host.broker.call(
			"shows.releaseSeats",
			{ showID, holdId, onlyIfHeld: true },
			{ timeout: 5000 }
		);
	} catch (err) {
		host.logger.warn(
			`Could not release hold ${holdId} now; it expires by itself: ${(err as Error).message}`
		);
	}
}
