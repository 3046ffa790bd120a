/**
 * Idempotency-Key records, owned by the reservations service (side collection `idempotency_keys`):
 * the hash of a client's key → the checkout it started, the fingerprint of what it asked for, and
 * when. Inserted once, so the first request with a key decides its checkout; expired after the
 * retention window (at least 24 hours, as pretix and Stripe keep theirs).
 *
 * The checkout id is random: a key never decides a reservation's id, so knowing or guessing a
 * client's key gives no way to compute the id that reads or cancels its booking.
 */
import type { SideCollection } from "../store/store-api";

export interface IdempotencyKeyDoc {
	_id: string;
	checkoutId: string;
	fingerprint: string;
	createdAt: number;
}

const HOUR_MS = 60 * 60 * 1000;

/** How long a key's record is kept (IDEMPOTENCY_KEY_HOURS), in milliseconds. */
export function keyWindowMs(hours: number): number {
	return hours * HOUR_MS;
}

/**
 * A booking made before key records existed, whose id was derived from the key. Remove (with
 * `legacyId` in the saga) in release 1.2.0: a key lives IDEMPOTENCY_KEY_HOURS, so once 1.1.0 has run
 * that long, no such booking can be asked for again.
 */
interface LegacyBooking {
	_id: string;
	fingerprint: string;
	createdAt: number;
}

/**
 * The record of `keyHash`: this request's if it is the first with the key (`created`), else the
 * first request's. A key whose booking predates key records, and is still inside the window, is
 * recorded as naming that booking, so a client retrying across the upgrade is not booked twice.
 */
export async function claimKey(
	keys: SideCollection,
	wanted: IdempotencyKeyDoc,
	findLegacy: () => Promise<LegacyBooking | null>,
	windowMs: number
): Promise<IdempotencyKeyDoc & { created: boolean }> {
	const legacy = await findLegacy();
	const record =
		legacy && legacy.createdAt >= wanted.createdAt - windowMs
			? {
					...wanted,
					checkoutId: legacy._id,
					fingerprint: legacy.fingerprint,
					createdAt: legacy.createdAt
				}
			: wanted;
	if (await keys.insertOnce({ ...record }))
		return { ...record, created: record.checkoutId === wanted.checkoutId };
	// An earlier request with the same key got in first.
	const first = await keys.findById<IdempotencyKeyDoc>(wanted._id);
	if (!first) throw new Error(`idempotency key record ${wanted._id} vanished`);
	return { ...first, created: false };
}

/** Removes records older than the window, a batch at a time; returns how many went. */
export async function purgeExpiredKeys(
	keys: SideCollection,
	windowMs: number,
	batch: number
): Promise<number> {
	const expired = await keys.find<IdempotencyKeyDoc>(
		{ createdAt: { $lt: Date.now() - windowMs } },
		batch
	);
	// Together, so that group commit removes the batch in one store write.
	await Promise.all(expired.map(doc => keys.removeById(doc._id)));
	return expired.length;
}
