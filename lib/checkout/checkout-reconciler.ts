/**
 * The reservations reconciler, run on every instance: it finishes what a dead orchestrator left.
 * Checkouts still open after a hold can live are confirmed if their seats were sold, else failed
 * and released; canceled reservations whose seats were not yet given back are released again until
 * that succeeds. It reads the two small to-do lists (`open_checkouts`, `seat_releases`) instead of
 * scanning every reservation, and now and then removes expired Idempotency-Key records and the
 * failed checkouts that no key can name any more.
 */
import type { Context, ServiceBroker } from "moleculer";
import type { SideCollection } from "../store/store-api";
import type { CounterSpec } from "../common/metrics";
import { keyWindowMs, purgeExpiredKeys } from "./idempotency-keys";
import type { ReservationFacts, TodoDoc } from "../reservations/reservation-facts";
import { CHECKOUT_STEPS, settleAbandoned } from "./saga-steps";

export const RECONCILED_COUNTER: CounterSpec = {
	name: "tickets_checkouts_reconciled_total",
	description: "Abandoned checkouts settled by the reconciler, by result",
	labelNames: ["result"]
};
/** A release listed this long ago whose cancel was never recorded belongs to a cancel that died. */
const UNFINISHED_CANCEL_MS = 60 * 1000;
/** To-do entries the reconciler takes on per round. */
const RECONCILE_BATCH = 500;
/** How often expired Idempotency-Key records and old failed checkouts are looked for. */
const KEY_PURGE_INTERVAL_MS = 10 * 60 * 1000;

export interface ReconcilerSettings {
	holdTtlSeconds: number;
	/** Extra wait past a hold's deadline before a pending checkout counts as abandoned. */
	reconcileGraceMs: number;
	idempotencyKeyHours: number;
}

/** What the reconciler needs from the reservations service that runs it. */
export interface ReconcilerHost {
	broker: ServiceBroker;
	logger: { info(...args: unknown[]): void; warn(...args: unknown[]): void };
	settings: ReconcilerSettings;
	side: Record<
		"reservation_states" | "open_checkouts" | "seat_releases" | "idempotency_keys",
		SideCollection
	>;
	facts: ReservationFacts;
	/** When expired Idempotency-Key records were last removed. */
	keysPurgedAt: number;
	countMetric(name: string, labels?: Record<string, string>): void;
}

/**
 * Puts a cancel's seat release on the to-do list. A cancel does this before it records itself, so
 * that a crash in between can never leave canceled seats counted. A repeated cancel lists it
 * again; releasing a hold twice changes nothing.
 */
export async function listSeatRelease(
	host: Pick<ReconcilerHost, "side">,
	id: string,
	showID: string,
	at: number
): Promise<void> {
	await host.side.seat_releases.insertOnce({ _id: id, showID, at });
}

/** Gives a canceled reservation's seats back and takes the release off the to-do list. */
async function releaseCanceledSeats(
	host: Pick<ReconcilerHost, "broker" | "side">,
	id: string,
	showID: string
): Promise<void> {
	await host.broker.call(CHECKOUT_STEPS.hold.undo, { showID, holdId: id });
	await host.side.seat_releases.removeById(id);
}

/**
 * For a recorded cancel: the seats go back now, or, if that fails, in a later reconciler round.
 * The to-do entry goes later and with others, not waited for: one left behind is released again by
 * the reconciler, which changes nothing.
 */
export async function releaseSeatsOrLeaveListed(
	host: Pick<ReconcilerHost, "side" | "logger">,
	id: string,
	showID: string,
	ctx: Context
): Promise<void> {
	const warn = (what: string) => (err: Error) => host.logger.warn(`${what}: ${err.message}`);
	try {
		// Through the cancel's context: the show's new seats come back in its meta to the gateway
		// (see shows.releaseSeats).
		await ctx.call(CHECKOUT_STEPS.hold.undo, { showID, holdId: id });
	} catch (err) {
		return warn(`Seats of canceled reservation ${id} not released yet, will retry`)(
			err as Error
		);
	}
	host.side.seat_releases.removeLater(id).catch(warn(`Seat release ${id} stays listed`));
}

/** A checkout whose orchestrator vanished, settled by the saga's own table (saga-steps.ts). */
async function reconcilePending(host: ReconcilerHost, id: string, showID: string): Promise<void> {
	const result = await settleAbandoned(host.broker, id, showID, (checkout, reason) =>
		host.facts.recordOutcome(checkout, "failed", reason)
	);
	host.countMetric(RECONCILED_COUNTER.name, { result });
	host.logger.info(`Reconciled checkout ${id}: ${result}`);
}

/**
 * Runs a purge batch after batch until one is not full, so that a backlog (after an upgrade from a
 * version that kept every failed checkout) goes in one round.
 */
async function drain(purgeBatch: () => Promise<number>): Promise<void> {
	while ((await purgeBatch()) === RECONCILE_BATCH) continue;
}

/**
 * One round: expired keys and failed checkouts (now and then), abandoned checkouts, then
 * unfinished releases.
 */
export async function reconcileCheckouts(host: ReconcilerHost): Promise<void> {
	if (Date.now() - host.keysPurgedAt > KEY_PURGE_INTERVAL_MS) {
		host.keysPurgedAt = Date.now();
		const windowMs = keyWindowMs(host.settings.idempotencyKeyHours);
		await drain(() => purgeExpiredKeys(host.side.idempotency_keys, windowMs, RECONCILE_BATCH));
		// A failed checkout held no seats (or gave them back): once its key, if it had one, has
		// expired, nothing can ask for it.
		await drain(() => host.facts.purgeFailed(Date.now() - windowMs, RECONCILE_BATCH));
	}
	const abandonedBefore =
		Date.now() - host.settings.holdTtlSeconds * 1000 - host.settings.reconcileGraceMs;
	const open = await host.side.open_checkouts.find<TodoDoc>({}, RECONCILE_BATCH);
	for (const checkout of open.filter(c => c.at < abandonedBefore)) {
		const decided = await host.side.reservation_states.findById(`${checkout._id}:outcome`);
		if (decided) await host.side.open_checkouts.removeById(checkout._id);
		else await reconcilePending(host, checkout._id, checkout.showID);
	}
	// A release listed within the grace belongs to a cancel still under way, or one whose entry
	// goes with the next housekeeping removal (STORE_CLEANUP_DELAY_MS): not ours to repeat yet.
	const listedBefore = Date.now() - host.settings.reconcileGraceMs;
	const releases = await host.side.seat_releases.find<TodoDoc>({}, RECONCILE_BATCH);
	for (const release of releases.filter(r => r.at <= listedBefore)) {
		const canceled = await host.side.reservation_states.findById(`${release._id}:canceled`);
		if (canceled) await releaseCanceledSeats(host, release._id, release.showID);
		// A cancel that died between listing its release and recording itself did not
		// happen: the reservation stands, and its seats stay sold.
		else if (release.at < Date.now() - UNFINISHED_CANCEL_MS)
			await host.side.seat_releases.removeById(release._id);
	}
}

/** Runs a round every `intervalMs`; a round that fails is simply tried again at the next. */
export function startReconciler(host: ReconcilerHost, intervalMs: number): NodeJS.Timeout {
	const timer = setInterval(() => {
		reconcileCheckouts(host).catch(err =>
			host.logger.warn(`Reconciliation failed, will retry: ${(err as Error).message}`)
		);
	}, intervalMs);
	timer.unref();
	return timer;
}
