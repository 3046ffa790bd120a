/**
 * The three moves of a checkout's seats, as changes for the show writer (lib/shows/show-writer.ts): take
 * a hold, sell it, give seats back. Each is idempotent by the checkout id, so a retried or
 * duplicated step answers as the first one did and changes nothing.
 */
import {
	checkoutDeadlinePassed,
	holdExpired,
	holdNotFound,
	idempotencyKeyReused,
	notEnoughSeats
} from "../common/errors";
import { holdView, seatsInDocument, type Hold } from "./show-seats";
import type { Settled } from "./settled-records";
import type { ShowChange } from "./show-writer";
import type { HoldState, HoldView } from "../common/types";

/** Looks up a checkout whose seats have left the document (sold, or sold and given back). */
type FindSettled = (showID: string, holdId: string) => Promise<Settled | null>;

/**
 * The checkout's deadline as its step carries it (`ctx.meta.deadline`, epoch ms), and the
 * allowance for clocks that disagree. `at: null`: a caller of an older release, with no deadline.
 */
export interface StepDeadline {
	at: number | null;
	skewMs: number;
}

/** The last moment a step of this checkout counts, or null if it has no deadline. */
function lastMoment(deadline: StepDeadline | undefined): number | null {
	return !deadline || deadline.at === null ? null : deadline.at + deadline.skewMs;
}

/**
 * Holds `count` seats until `ttlMs` from now, or until the checkout's deadline (plus the skew)
 * if that comes first, so that a hold nobody confirms frees itself soon after its buyer was
 * answered. A new hold past that deadline is refused. `resume`: an earlier attempt of this
 * checkout may have sold them already, so a checkout that has left the document is looked up first.
 */
export function takeHold(
	showID: string,
	holdId: string,
	count: number,
	options: { ttlMs: number; resume: boolean; findSettled: FindSettled; deadline?: StepDeadline }
): ShowChange<HoldView & { created: boolean }> {
	const last = lastMoment(options.deadline);
	return async (show, now) => {
		const existing: Hold | Settled | null =
			show.holds.find(h => h.id === holdId) ??
			(options.resume ? await options.findSettled(showID, holdId) : null);
		if (existing) {
			// A retry or duplicate of the same checkout: same answer, and no new deadline, so a
			// hold can never be kept alive by repeating it.
			if (existing.count !== count) throw idempotencyKeyReused();
			const view = holdView(showID, existing, existing.state);
			return { result: { ...view, created: false }, changed: false };
		}
		if (last !== null && now > last) throw checkoutDeadlinePassed(holdId);
		// From the document, not `show.reserved`: earlier changes of this batch count too.
		const available = show.houseSize - seatsInDocument(show);
		if (count > available) throw notEnoughSeats(count, available);
		const hold: Hold = {
			id: holdId,
			count,
			state: "held",
			expiresAt: Math.min(now + options.ttlMs, last ?? Infinity),
			createdAt: now
		};
		show.holds.push(hold);
		return { result: { ...holdView(showID, hold, "held"), created: true }, changed: true };
	};
}

/**
 * Sells a held checkout; refused once its hold has expired, or once the checkout's deadline has
 * passed (the saga then gives the seats back). `sold`: this call sold it.
 */
export function sellHold(
	showID: string,
	holdId: string,
	findSettled: FindSettled,
	deadline?: StepDeadline
): ShowChange<{ view: HoldView; sold: boolean }> {
	const last = lastMoment(deadline);
	return async (show, now, expired) => {
		const hold = show.holds.find(h => h.id === holdId);
		// Its buyer was answered already: selling now would book what they were told failed.
		if (hold?.state === "held" && last !== null && now > last)
			throw checkoutDeadlinePassed(holdId);
		if (hold) {
			const sold = hold.state === "held";
			hold.state = "confirmed";
			hold.expiresAt = null;
			return { result: { view: holdView(showID, hold, "confirmed"), sold }, changed: sold };
		}
		if (expired.some(h => h.id === holdId)) throw holdExpired(holdId);
		const settled = show.releasing.some(r => r.id === holdId)
			? null
			: await findSettled(showID, holdId);
		// Sold by an earlier attempt and settled since: the same answer again.
		if (settled?.state === "confirmed")
			return {
				result: { view: holdView(showID, settled, "confirmed"), sold: false },
				changed: false
			};
		throw holdNotFound(holdId);
	};
}

/**
 * Gives a checkout's seats back, held or sold, however long after the sale, exactly once.
 * `onlyIfHeld` leaves sold seats alone (compensations must not undo a sale) and reports them as
 * `confirmed`, which is how the reconciler learns that a checkout was sold.
 */
export function releaseHold(
	showID: string,
	holdId: string,
	onlyIfHeld: boolean,
	findSettled: FindSettled
): ShowChange<{ released: number; state: HoldState }> {
	return async (show, _now, expired) => {
		const nothing = (state: HoldState) => ({ result: { released: 0, state }, changed: false });
		const hold = show.holds.find(h => h.id === holdId);
		if (hold?.state === "held") {
			show.holds = show.holds.filter(h => h !== hold);
			return { result: { released: hold.count, state: "held" }, changed: true };
		}
		if (show.releasing.some(r => r.id === holdId)) return nothing("released");
		if (expired.some(h => h.id === holdId)) return nothing("expired");
		const sold = hold ?? (await findSettled(showID, holdId));
		if (!sold) return nothing("missing");
		if (sold.state === "released") return nothing("released");
		if (onlyIfHeld) return nothing("confirmed");
		// Sold seats go back through `releasing`, so that a release record marks them given back.
		if (hold) show.holds = show.holds.filter(h => h !== hold);
		else show.sold -= sold.count;
		show.releasing.push({ id: holdId, count: sold.count });
		return { result: { released: sold.count, state: "confirmed" }, changed: true };
	};
}
