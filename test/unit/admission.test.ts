/**
 * The gateway's admission gate for checkouts (lib/gateway/admission.ts): a concurrency limit, a
 * short FIFO queue with a longest wait, and an immediate 503 SERVER_BUSY with a jittered wait
 * beyond them, later when many refused buyers are already due back.
 */
import { createAdmissionGate, type Release } from "../../lib/gateway/admission";
import { describeError } from "../../lib/gateway/http-errors";

function gate(overrides: Partial<Parameters<typeof createAdmissionGate>[0]> = {}) {
	return createAdmissionGate({
		concurrency: 2,
		queueSize: 2,
		maxWaitMs: 60000,
		retryAfterS: 2,
		...overrides
	});
}

/** Whether a promise has settled yet, without waiting for it. */
async function settledYet(promise: Promise<unknown>): Promise<boolean> {
	let settled = false;
	promise.then(
		() => (settled = true),
		() => (settled = true)
	);
	await new Promise(resolve => setImmediate(resolve));
	return settled;
}

describe("admission gate", () => {
	it("admits up to its concurrency at once, then lets waiters in first come, first served", async () => {
		const g = gate();
		const first = await g.enter();
		await g.enter();
		const order: string[] = [];
		const third = g.enter().then(release => (order.push("third"), release));
		const fourth = g.enter().then(release => (order.push("fourth"), release));
		expect(await settledYet(third)).toBe(false);
		expect(g.load()).toEqual({ running: 2, waiting: 2 });
		first();
		(await third)();
		await fourth;
		expect(order).toEqual(["third", "fourth"]);
		expect(g.load()).toEqual({ running: 2, waiting: 0 });
	});

	it("refuses at once, with a 503 SERVER_BUSY and a jittered Retry-After, when the queue is full", async () => {
		const waits = [0, 0.99].map(r => {
			const g = gate({ queueSize: 0, concurrency: 1, random: () => r });
			void g.enter();
			return g.enter().then(
				() => null,
				err => describeError(err)
			);
		});
		const [low, high] = await Promise.all(waits);
		expect(low).toMatchObject({ status: 503, body: { type: "SERVER_BUSY" }, retryAfter: 2 });
		expect(high).toMatchObject({ status: 503, body: { type: "SERVER_BUSY" }, retryAfter: 4 });
	});

	it("refuses a waiter whose longest wait is over, and counts every refusal", async () => {
		let refused = 0;
		const g = gate({ concurrency: 1, queueSize: 5, maxWaitMs: 10, refused: () => refused++ });
		const running = await g.enter();
		await expect(g.enter()).rejects.toMatchObject({ code: 503, type: "SERVER_BUSY" });
		expect(g.load()).toEqual({ running: 1, waiting: 0 });
		expect(refused).toBe(1);
		running();
		expect(g.load().running).toBe(0);
	});

	it("refuses at once a checkout that could not get in within the longest wait, at the pace checkouts take now", async () => {
		let clock = 0;
		const g = gate({ concurrency: 1, queueSize: 10, maxWaitMs: 500, now: () => clock });
		// Checkouts have been taking a second each.
		for (let i = 0; i < 30; i++) {
			const release = await g.enter();
			clock += 1000;
			release();
		}
		await g.enter();
		const next = g.enter();
		expect(await settledYet(next)).toBe(true);
		await expect(next).rejects.toMatchObject({ code: 503, type: "SERVER_BUSY" });
		expect(g.load()).toEqual({ running: 1, waiting: 0 });
	});

	it("takes the pace from the first checkout that finished, refusing at once what could not get in at it", async () => {
		let clock = 0;
		const g = gate({ concurrency: 1, queueSize: 10, maxWaitMs: 500, now: () => clock });
		const first = await g.enter();
		clock += 1000;
		first();
		await g.enter();
		// The next would wait about a second, over half the longest wait.
		const next = g.enter();
		expect(g.load()).toEqual({ running: 1, waiting: 0 });
		await expect(next).rejects.toMatchObject({ code: 503, type: "SERVER_BUSY" });
	});

	it("queues one round of checkouts at most until one has finished and their pace is known", async () => {
		const g = gate({ concurrency: 2, queueSize: 100 });
		await g.enter();
		await g.enter();
		const waiting = [g.enter(), g.enter()];
		await expect(g.enter()).rejects.toMatchObject({ code: 503, type: "SERVER_BUSY" });
		expect(g.load()).toEqual({ running: 2, waiting: 2 });
		waiting.forEach(w => w.catch(() => undefined));
	});

	it("sends refused buyers to a later second once a quarter of what the node books in one are due back in it", async () => {
		let clock = 0;
		const g = gate({
			concurrency: 1,
			queueSize: 0,
			retryAfterS: 2,
			random: () => 0,
			now: () => clock
		});
		// Checkouts take 125 ms each: this node books eight a second, and takes two back in one.
		for (let i = 0; i < 30; i++) {
			const release = await g.enter();
			clock += 125;
			release();
		}
		await g.enter();
		const retryAfters = [];
		for (let i = 0; i < 5; i++)
			retryAfters.push(describeError(await g.enter().catch(err => err)).retryAfter);
		expect(retryAfters).toEqual([2, 2, 3, 3, 4]);
		// A second later, the seconds already promised are a second nearer.
		clock += 1000;
		expect(describeError(g.refusesNow()).retryAfter).toBe(3);
	});

	it("tells, before a checkout is read, whether it would be refused", async () => {
		const g = gate({ concurrency: 1, queueSize: 1 });
		expect(g.refusesNow()).toBeNull();
		await g.enter();
		expect(g.refusesNow()).toBeNull();
		void g.enter().catch(() => undefined);
		expect(g.refusesNow()).toMatchObject({ code: 503, type: "SERVER_BUSY" });
	});

	it("frees one slot however often a release is called", async () => {
		const g = gate({ concurrency: 1, queueSize: 1 });
		const release: Release = await g.enter();
		const next = g.enter();
		release();
		release();
		await next;
		expect(g.load()).toEqual({ running: 1, waiting: 0 });
	});
});
