/**
 * The domain's refusals, as Moleculer client errors with a stable `type`. The gateway maps their
 * `code` to the HTTP status in one place (api.service.ts).
 */
import { Errors } from "moleculer";

const { MoleculerClientError, MoleculerError, MoleculerRetryableError } = Errors;

export const ErrorTypes = {
	SHOW_NOT_FOUND: "SHOW_NOT_FOUND",
	RESERVATION_NOT_FOUND: "RESERVATION_NOT_FOUND",
	NOT_ENOUGH_SEATS: "NOT_ENOUGH_SEATS",
	HOUSE_TOO_SMALL: "HOUSE_TOO_SMALL",
	HOLD_NOT_FOUND: "HOLD_NOT_FOUND",
	HOLD_EXPIRED: "HOLD_EXPIRED",
	IDEMPOTENCY_KEY_REUSED: "IDEMPOTENCY_KEY_REUSED",
	CHECKOUT_FAILED: "CHECKOUT_FAILED",
	RESERVATION_NOT_CANCELABLE: "RESERVATION_NOT_CANCELABLE",
	TOO_MANY_TICKETS: "TOO_MANY_TICKETS",
	STORE_CONFLICT: "STORE_CONFLICT",
	STORE_UNAVAILABLE: "STORE_UNAVAILABLE",
	CHECKOUT_DEADLINE_PASSED: "CHECKOUT_DEADLINE_PASSED",
	SERVER_BUSY: "SERVER_BUSY"
} as const;

export function showNotFound(showID: string) {
	return new MoleculerClientError(`show ${showID} not found`, 404, ErrorTypes.SHOW_NOT_FOUND, {
		showID
	});
}

export function reservationNotFound(id: string) {
	return new MoleculerClientError(
		`reservation ${id} not found`,
		404,
		ErrorTypes.RESERVATION_NOT_FOUND,
		{ id }
	);
}

/**
 * Builds an error without capturing a stack: for refusals that are answers, not faults, and come
 * by the thousand in an on-sale (a stack costs as much as the rest of a refusal at the door).
 */
function withoutStack<T>(build: () => T): T {
	const limit = Error.stackTraceLimit;
	Error.stackTraceLimit = 0;
	try {
		return build();
	} finally {
		Error.stackTraceLimit = limit;
	}
}

export function notEnoughSeats(count: number, remaining: number) {
	return withoutStack(
		() =>
			new MoleculerClientError(
				`cannot reserve ${count} seats. Only ${remaining} remaining.`,
				409,
				ErrorTypes.NOT_ENOUGH_SEATS,
				{ requested: count, remaining }
			)
	);
}

export function houseTooSmall(houseSize: number, reserved: number) {
	return new MoleculerClientError(
		`cannot make the house ${houseSize} seats: ${reserved} are already held or sold`,
		409,
		ErrorTypes.HOUSE_TOO_SMALL,
		{ houseSize, reserved }
	);
}

export function holdNotFound(holdId: string) {
	return new MoleculerClientError(`hold ${holdId} not found`, 409, ErrorTypes.HOLD_NOT_FOUND, {
		holdId
	});
}

export function holdExpired(holdId: string) {
	return new MoleculerClientError(
		`the seats of checkout ${holdId} were held too long and went back on sale`,
		409,
		ErrorTypes.HOLD_EXPIRED,
		{ holdId }
	);
}

/**
 * A checkout's step arrived after the checkout's deadline: its buyer has had an answer already,
 * so nothing is held or sold for it (the saga compensates).
 */
export function checkoutDeadlinePassed(holdId: string) {
	return new MoleculerClientError(
		`checkout ${holdId} ran out of time; nothing was held or sold for it`,
		409,
		ErrorTypes.CHECKOUT_DEADLINE_PASSED,
		{ holdId }
	);
}

/**
 * The gateway node runs as many checkouts as the stores can take; this one was not admitted.
 * `retryAfter` (seconds) is jittered by the caller so that retries spread out. Not retryable: the
 * client retries, later, rather than a broker at once.
 */
export function serverBusy(retryAfter: number) {
	return withoutStack(
		() =>
			new MoleculerError(
				"too many checkouts at once; try again shortly",
				503,
				ErrorTypes.SERVER_BUSY,
				{ retryAfter }
			)
	);
}

export function idempotencyKeyReused() {
	return new MoleculerClientError(
		"this Idempotency-Key was already used for a different request",
		422,
		ErrorTypes.IDEMPOTENCY_KEY_REUSED
	);
}

export function checkoutFailed(id: string) {
	return new MoleculerClientError(
		"this checkout failed earlier; retry with a new Idempotency-Key",
		409,
		ErrorTypes.CHECKOUT_FAILED,
		{ id }
	);
}

export function notCancelable(id: string, status: string) {
	return new MoleculerClientError(
		`reservation ${id} is ${status} and cannot be canceled`,
		409,
		ErrorTypes.RESERVATION_NOT_CANCELABLE,
		{ id, status }
	);
}

export function tooManyTickets(count: number, max: number) {
	return new MoleculerClientError(
		`cannot reserve ${count} seats in one order: the limit is ${max}`,
		422,
		ErrorTypes.TOO_MANY_TICKETS,
		{ requested: count, max }
	);
}

/** Another writer changed the show between our read and our write; safe to retry. */
export function storeConflict(showID: string) {
	return new MoleculerRetryableError(
		`show ${showID} changed concurrently; try again`,
		503,
		ErrorTypes.STORE_CONFLICT,
		{ showID }
	);
}

/** The MongoDB driver's error names for a store it cannot reach (a partition, a restart). */
export const STORE_UNREACHABLE =
	/^Mongo(ServerSelection|Network|NetworkTimeout|Timeout|PoolCleared|TopologyClosed|NotConnected)Error$/;

/**
 * The MongoDB driver could not reach this node's store (a partition, a restart). Retryable, so
 * that the caller's broker tries another instance of the service, which may still reach it.
 */
export function storeUnavailable() {
	return new MoleculerRetryableError(
		"the store cannot be reached from this node; try again",
		503,
		ErrorTypes.STORE_UNAVAILABLE
	);
}
