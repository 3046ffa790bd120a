/**
 * Admission control for checkouts at the gateway: each node runs at most `concurrency` checkouts at
 * once, lets up to `queueSize` more wait in a FIFO queue for at most `maxWaitMs`, and refuses the
 * rest at once with 503 SERVER_BUSY and a jittered Retry-After. Past the stores' capacity, more
 * checkouts in flight only make every one of them slower (and time out after their work was done);
 * refusing the excess early keeps the admitted ones fast and tells the others when to come back.
 * A checkout that would not get in within half the longest wait, judging by how long checkouts take
 * now (Little's law), is refused at once rather than after waiting for nothing; the other half is
 * the margin that keeps a late refusal rare. Refused buyers are told to return at no more than a
 * quarter of the rate this node books: once that many are due back in one second, the next are sent
 * to a later one, so that a crowd's retries come back spread out and cost little.
 * Why a gate of our own rather than Moleculer's bulkhead: see docs/design.md "Admission control".
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { serverBusy } from "../common/errors";
import { sendErrorAnswer } from "./error-answers";

interface AdmissionOptions {
	/** Checkouts this node runs at once. */
	concurrency: number;
	/** Checkouts that may wait for a slot; 0: none wait. */
	queueSize: number;
	/** Longest a checkout waits in the queue before it is refused. */
	maxWaitMs: number;
	/** A refusal's Retry-After, in seconds: from this up to twice this, at random, or later. */
	retryAfterS: number;
	/** Called on each refusal (the gateway counts it). */
	refused?: () => void;
	/** For tests: a number in [0, 1), and the clock (ms). */
	random?: () => number;
	now?: () => number;
}

/** Gives the slot back; calling it again does nothing. */
export type Release = () => void;

export interface AdmissionGate {
	/** Resolves with the slot's release once admitted; rejects with SERVER_BUSY if refused. */
	enter(): Promise<Release>;
	/** Whether a checkout arriving now would be refused; if so, its refusal (counted). */
	refusesNow(): Error | null;
	/** Checkouts running and waiting now. */
	load(): { running: number; waiting: number };
}

interface Waiter {
	admit(release: Release): void;
	timer: NodeJS.Timeout;
}

/** Weight of the newest checkout in the moving average of how long one takes. */
const SMOOTHING = 0.1;
/** Share of the longest wait that the expected wait of a newcomer may take. */
const QUEUE_MARGIN = 0.5;
/** The latest a refused buyer is told to return, in seconds. */
const LATEST_RETRY_S = 60;
/**
 * Share of the checkouts a node books in a second that may be buyers it sent back. Under a
 * sustained surge the queue is kept full by buyers asking again, so most returning buyers are
 * refused once more, and each refusal is a request to answer: spreading them thinner keeps that
 * cost small next to the bookings. Without a surge no second fills and the wait stays short.
 */
const RETURNING_SHARE = 0.25;

export function createAdmissionGate(options: AdmissionOptions): AdmissionGate {
	const random = options.random ?? Math.random;
	const now = options.now ?? Date.now;
	let running = 0;
	/** How long a checkout holds its slot, as a moving average (0 until one has finished). */
	let slotMs = 0;
	const queue: Waiter[] = [];
	const busyErrors = new Map<number, Error>();
	/** Refused buyers told to return in each coming second (the key: a second since the epoch). */
	const returning = new Map<number, number>();

	/** Checkouts this node finishes in a second, at the pace they take now. */
	const bookedPerSecond = () =>
		slotMs > 0 ? (options.concurrency * 1000) / slotMs : options.concurrency;

	/**
	 * A Retry-After from [retryAfterS, 2 × retryAfterS] at random, so that refused clients do not
	 * return together, or the first later second that has room for one more returning buyer.
	 */
	const refusal = () => {
		options.refused?.();
		const second = Math.floor(now() / 1000);
		for (const [at] of returning) if (at <= second) returning.delete(at);
		const room = Math.max(1, Math.floor(bookedPerSecond() * RETURNING_SHARE));
		let wait = options.retryAfterS + Math.floor(random() * (options.retryAfterS + 1));
		while (wait < LATEST_RETRY_S && (returning.get(second + wait) ?? 0) >= room) wait++;
		returning.set(second + wait, (returning.get(second + wait) ?? 0) + 1);
		// One error per wait, made once: in a surge most checkouts are refused, each as cheaply as can be.
		let busy = busyErrors.get(wait);
		if (!busy) busyErrors.set(wait, (busy = serverBusy(wait)));
		return busy;
	};

	/** The wait of the `position`-th in the queue, at the rate slots free up now. */
	const expectedWaitMs = (position: number) => (position * slotMs) / options.concurrency;

	function slot(): Release {
		running++;
		const taken = now();
		let released = false;
		return () => {
			if (released) return;
			released = true;
			running--;
			// The first checkout to finish sets the pace; an average started at 0 would take
			// dozens of checkouts to reach it, and meanwhile let in a queue that cannot get in.
			const held = now() - taken;
			slotMs = slotMs === 0 ? held : slotMs + (held - slotMs) * SMOOTHING;
			const next = queue.shift();
			if (next) {
				clearTimeout(next.timer);
				next.admit(slot());
			}
		};
	}

	// Until a checkout has finished, how long one takes is unknown: one round of waiters at most.
	const full = () =>
		running >= options.concurrency &&
		(queue.length >= options.queueSize ||
			(slotMs === 0 && queue.length >= options.concurrency) ||
			expectedWaitMs(queue.length + 1) > options.maxWaitMs * QUEUE_MARGIN);

	return {
		enter() {
			if (running < options.concurrency && queue.length === 0) return Promise.resolve(slot());
			if (full()) return Promise.reject(refusal());
			return new Promise<Release>((resolve, reject) => {
				const waiter: Waiter = {
					admit: resolve,
					timer: setTimeout(() => {
						queue.splice(queue.indexOf(waiter), 1);
						reject(refusal());
					}, options.maxWaitMs)
				};
				queue.push(waiter);
			});
		},
		refusesNow: () => (full() ? refusal() : null),
		load: () => ({ running, waiting: queue.length })
	};
}

const isCheckout = (req: IncomingMessage) =>
	req.method === "POST" && (req.url ?? "").split("?")[0] === "/reserve";

/**
 * Refuses a checkout at once, before its body is read, when the gate would refuse it anyway: in a
 * surge most checkouts are refused, and each must cost as little as can be. True if it answered.
 */
export function refuseWhenFull(
	gate: AdmissionGate | undefined,
	req: IncomingMessage,
	res: ServerResponse
): boolean {
	const refusal = gate && isCheckout(req) ? gate.refusesNow() : null;
	if (refusal) sendErrorAnswer(req, res, refusal);
	return refusal !== null;
}

/**
 * Runs `route` for a checkout (`POST /reserve`) once the gate admits it, and gives its slot back
 * when its answer is out or its connection gone; refuses it with 503 if not admitted. Any other
 * request goes to `route` at once.
 */
export function admitCheckout(
	gate: AdmissionGate | undefined,
	req: IncomingMessage,
	res: ServerResponse,
	route: () => unknown
): unknown {
	// What `route` returns is handed back, so that the front door sees its failures too.
	if (!gate || !isCheckout(req)) return route();
	return gate.enter().then(
		release => {
			res.once("finish", release);
			res.once("close", release);
			// A client that left while it waited takes no slot.
			if (res.destroyed || res.writableEnded) return release();
			return route();
		},
		(err: Error) => sendErrorAnswer(req, res, err)
	);
}
