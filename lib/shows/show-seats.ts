/**
 * The seats of one show, as its document in the shows store keeps them. The document holds only
 * what a write needs: the house, the counters, and the checkouts in flight. Sold seats are a
 * counter here and one insert-once record per checkout elsewhere (`show_sales`), so the document
 * stays the same size however many seats are sold.
 *
 * A checkout's seats move through the document and out of it:
 *   held (in `holds`, with a deadline) → confirmed (still in `holds`, until its sale record is
 *   written) → settled (sale record written, counted in `sold`, gone from the document).
 * A release of settled seats goes the same way: `sold` drops and the checkout waits in `releasing`
 * until its release record (`show_releases`) is written. The document is the truth for what is in
 * flight, and a record is only ever written for a change the document has already committed, so a
 * crash at any step leaves nothing counted twice or lost: the next write settles what is pending.
 */
import type { HoldView, PublicShow, ShowState } from "../common/types";

export interface Hold {
	/** The checkout id: one hold per checkout, which makes every step idempotent. */
	id: string;
	count: number;
	state: "held" | "confirmed";
	/** Epoch ms after which an unconfirmed hold no longer counts; `null` once confirmed. */
	expiresAt: number | null;
	createdAt: number;
}

/** Sold seats being given back, until their release record is written. */
export interface Releasing {
	id: string;
	count: number;
}

export interface ShowDoc {
	_id: string;
	name: string;
	houseSize: number;
	/** Seats sold before this system took over (the seed's sold-out rally). */
	presold: number;
	/** Seats of settled sales, less settled releases. */
	sold: number;
	/** presold + sold + the seats of every hold: derived, stored so that reads need no sum. */
	reserved: number;
	/** Checkouts in flight: unconfirmed holds, and confirmed ones not yet settled. */
	holds: Hold[];
	releasing: Releasing[];
	/**
	 * When the sweeper should look at this show: the earliest hold deadline, or at once when
	 * something waits to be settled (after a crash between a write and its settlement).
	 */
	nextExpiry: number | null;
	version: number;
	createdAt: number;
	updatedAt: number;
}

/** One insert-once record of `show_sales` or `show_releases`, keyed by checkout id. */
export interface SeatRecord {
	_id: string;
	showID: string;
	count: number;
	at: number;
}

export function newShowDoc(fields: {
	_id: string;
	name: string;
	houseSize: number;
	presold: number;
}): ShowDoc {
	const now = Date.now();
	return {
		...fields,
		sold: 0,
		reserved: fields.presold,
		holds: [],
		releasing: [],
		nextExpiry: null,
		version: 1,
		createdAt: now,
		updatedAt: now
	};
}

/**
 * A stored show in today's shape. Documents written before sales moved out of them have no `sold`
 * and keep confirmed holds for good; read as they are, they count the same seats, and their first
 * write settles those holds into `sold` (the migration).
 */
export function fromStored(doc: Partial<ShowDoc> & { _id: string }): ShowDoc {
	return {
		...doc,
		presold: doc.presold ?? 0,
		sold: doc.sold ?? 0,
		holds: doc.holds ?? [],
		releasing: doc.releasing ?? [],
		version: doc.version ?? 1
	} as ShowDoc;
}

export function isExpired(hold: Hold, now: number): boolean {
	return hold.state === "held" && (hold.expiresAt ?? 0) <= now;
}

/** What the document stores as `reserved`: presold, sold, and every hold in it. */
export function seatsInDocument(show: ShowDoc): number {
	return show.holds.reduce((sum, h) => sum + h.count, show.presold + show.sold);
}

/** Seats held or sold at `now`: a hold past its deadline no longer counts, swept or not. */
function seatsTaken(show: ShowDoc, now: number): number {
	return show.holds.reduce(
		(sum, h) => (isExpired(h, now) ? sum : sum + h.count),
		show.presold + show.sold
	);
}

export function toPublicShow(show: ShowDoc, now = Date.now()): PublicShow {
	const reserved = seatsTaken(show, now);
	return {
		_id: show._id,
		name: show.name,
		houseSize: show.houseSize,
		reserved,
		available: show.houseSize - reserved
	};
}

/** The public show with its document version, as events and gateways' list fetches carry it. */
export function toShowState(show: ShowDoc, now = Date.now()): ShowState {
	return { ...toPublicShow(show, now), version: show.version };
}

/** Drops unconfirmed holds whose time is up and returns them. */
export function dropExpiredHolds(show: ShowDoc, now: number): Hold[] {
	const expired = show.holds.filter(h => isExpired(h, now));
	if (expired.length > 0) show.holds = show.holds.filter(h => !expired.includes(h));
	return expired;
}

/** Confirmed holds and releases that wait for their records. */
export function unsettled(show: ShowDoc): { sales: Hold[]; releases: Releasing[] } {
	return { sales: show.holds.filter(h => h.state === "confirmed"), releases: show.releasing };
}

/** After their records are written: confirmed holds become `sold`, releases leave the document. */
export function markSettled(show: ShowDoc, sales: Hold[], releases: Releasing[]): void {
	if (sales.length > 0) {
		show.holds = show.holds.filter(h => !sales.includes(h));
		show.sold += sales.reduce((sum, h) => sum + h.count, 0);
	}
	if (releases.length > 0) show.releasing = show.releasing.filter(r => !releases.includes(r));
}

/** Derived fields, set before every write. */
export function refreshDerived(show: ShowDoc, now: number): void {
	show.reserved = seatsInDocument(show);
	const pending = unsettled(show);
	const deadlines = show.holds.filter(h => h.state === "held").map(h => h.expiresAt ?? 0);
	if (pending.sales.length > 0 || pending.releases.length > 0) deadlines.push(now);
	show.nextExpiry = deadlines.length > 0 ? Math.min(...deadlines) : null;
	show.updatedAt = now;
}

export function holdView(
	showID: string,
	hold: Pick<Hold, "id" | "count" | "expiresAt">,
	state: HoldView["state"]
): HoldView {
	return { holdId: hold.id, showID, count: hold.count, state, expiresAt: hold.expiresAt };
}
