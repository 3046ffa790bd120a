/** Shapes that cross the broker between services and the gateway. */

export interface PublicShow {
	_id: string;
	name: string;
	houseSize: number;
	reserved: number;
	available: number;
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

export type ReservationStatus = "pending" | "confirmed" | "failed" | "canceled";

export interface Reservation {
	_id: string;
	showID: string;
	name: string;
	guests: number;
	status: ReservationStatus;
	createdAt: number;
	updatedAt: number;
}
