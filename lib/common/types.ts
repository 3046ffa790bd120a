/** Shapes that cross the broker between services and the gateway. */

export interface PublicShow {
	_id: string;
	name: string;
	houseSize: number;
	reserved: number;
	available: number;
}

/**
 * A show's seats as of one write to it: the public show and the document version that write
 * stored. Carried by `shows.changed` and by a seat move's answer (in `ctx.meta.showState`), so a
 * gateway can tell a newer state from an older one that arrives late.
 */
export interface ShowState extends PublicShow {
	version: number;
}

/**
 * `confirmed`: sold; `released`: sold, then given back (a cancel); `expired`: unconfirmed and past
 * its deadline; `missing`: never held, or dropped unconfirmed.
 */
export type HoldState = "held" | "confirmed" | "released" | "expired" | "missing";

export interface HoldView {
	holdId: string;
	showID: string;
	count: number;
	state: HoldState;
	expiresAt: number | null;
}

type ReservationStatus = "pending" | "confirmed" | "failed" | "canceled";

export interface Reservation {
	_id: string;
	showID: string;
	name: string;
	guests: number;
	status: ReservationStatus;
	createdAt: number;
	updatedAt: number;
}

/** A reservation as the reservations service keeps it: what a checkout's replay or resume needs. */
export interface ReservationDoc extends Reservation {
	/** Hash of what was asked for, to tell a replay from a reuse of an Idempotency-Key. */
	fingerprint: string;
	/** For a canceled reservation: whether its seats are back on sale yet. */
	seatsReleased?: boolean;
	failReason?: string;
}
