/**
 * The checkout saga in one table, in the spirit of Temporal's saga sample: each step, the action it
 * calls, the action that undoes it, and what happens when its outcome is unknown (a timeout, a node
 * that died). lib/checkout/checkout-saga.ts runs the steps; `settleAbandoned` below finishes a
 * checkout whose orchestrator vanished, by the same table (the reservations reconciler calls it).
 */
import type { ServiceBroker } from "moleculer";
import type { HoldState } from "../common/types";

interface SagaStep {
	/** The action the step calls, with the checkout id as its idempotency key. */
	action: string;
	/** The action that undoes the step before the pivot; none after it (forward only). */
	undo: string | null;
	/** What happens when the step's outcome is unknown. */
	whenUnknown: string;
}

export const CHECKOUT_STEPS = {
	hold: {
		action: "shows.holdSeats",
		undo: "shows.releaseSeats",
		whenUnknown:
			"released with onlyIfHeld in case it happened; a hold nobody confirms expires at its deadline"
	},
	record: {
		action: "reservations.create",
		undo: "reservations.discard",
		whenUnknown:
			"the checkout stays pending; the reconciler settles it by where its seats stand"
	},
	pivot: {
		action: "shows.confirmHold",
		undo: null,
		whenUnknown: "pending; the reconciler confirms it if the seats were sold, else fails it"
	},
	confirm: {
		action: "reservations.confirm",
		undo: null,
		whenUnknown: "retried; then the reconciler confirms it, since the seats are sold"
	}
} as const satisfies Record<string, SagaStep>;

/** A failed checkout is recorded so: its key then answers 409 instead of booking again. */
export const FAIL_CHECKOUT = "reservations.fail";

type SettleResult = "confirmed" | "failed";

/**
 * A checkout whose orchestrator vanished, settled by where its seats stand. Undoing the hold with
 * `onlyIfHeld` both frees seats that were only held (past their deadline they can no longer be
 * confirmed) and reports seats that were sold, in one serialised step of the show's writer: sold
 * seats make the checkout confirmed (the pivot happened), anything else makes it failed.
 */
export async function settleAbandoned(
	broker: ServiceBroker,
	id: string,
	showID: string,
	recordFailed: (id: string, reason: string) => Promise<unknown>
): Promise<SettleResult> {
	const { state } = await broker.call<{ state: HoldState }, object>(CHECKOUT_STEPS.hold.undo, {
		showID,
		holdId: id,
		onlyIfHeld: true
	});
	if (state === "confirmed") {
		await broker.call(CHECKOUT_STEPS.confirm.action, { id });
		return "confirmed";
	}
	await recordFailed(id, `abandoned (${state})`);
	return "failed";
}
