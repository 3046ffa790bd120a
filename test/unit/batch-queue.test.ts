import { createBatchQueue, type Outcome } from "../../lib/common/batch-queue";

/** A promise whose settlement the test controls. */
function deferred<T = void>() {
	let resolve!: (value: T) => void;
	const promise = new Promise<T>(res => (resolve = res));
	return { promise, resolve };
}

const flush = () => new Promise<void>(resolve => setImmediate(resolve));

const echo = (inputs: string[]): Outcome<string>[] =>
	inputs.map(value => ({ ok: true, value: value.toUpperCase() }));

describe("batch queue", () => {
	it("runs one batch at a time per key, and what arrives meanwhile forms the next batch", async () => {
		const gate = deferred();
		const batches: string[][] = [];
		let running = 0;
		let maxRunning = 0;
		const queue = createBatchQueue<string, string>(async (_key, inputs) => {
			running++;
			maxRunning = Math.max(maxRunning, running);
			batches.push(inputs);
			if (batches.length === 1) await gate.promise;
			running--;
			return echo(inputs);
		}, 10);

		const first = queue.push("show", "a");
		const rest = ["b", "c", "d"].map(x => queue.push("show", x));
		await flush();
		expect(batches).toEqual([["a"]]);
		gate.resolve();
		expect(await Promise.all([first, ...rest])).toEqual(["A", "B", "C", "D"]);
		expect(batches).toEqual([["a"], ["b", "c", "d"]]);
		expect(maxRunning).toBe(1);
		expect(queue.size).toBe(0);
	});

	it("never puts more than maxBatch inputs in one batch, and keeps their order", async () => {
		const gate = deferred();
		const batches: number[][] = [];
		const queue = createBatchQueue<number, number>(async (_key, inputs) => {
			batches.push(inputs);
			if (batches.length === 1) await gate.promise;
			return inputs.map(value => ({ ok: true, value }));
		}, 3);
		const all = [0, 1, 2, 3, 4, 5, 6, 7].map(n => queue.push("show", n));
		gate.resolve();
		expect(await Promise.all(all)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
		expect(batches).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
	});

	it("a key whose batch is blocked does not hold up another key", async () => {
		const gate = deferred();
		const queue = createBatchQueue<string, string>(async (key, inputs) => {
			if (key === "busy") await gate.promise;
			return echo(inputs);
		}, 10);
		const blocked = queue.push("busy", "x");
		await expect(queue.push("free", "y")).resolves.toBe("Y");
		gate.resolve();
		await expect(blocked).resolves.toBe("X");
	});

	it("a failed outcome rejects only its own input", async () => {
		const queue = createBatchQueue<string, string>(
			async (_key, inputs) =>
				inputs.map(value =>
					value === "bad"
						? { ok: false, error: new Error("refused") }
						: { ok: true, value }
				),
			10
		);
		const results = await Promise.allSettled(
			["ok1", "bad", "ok2"].map(x => queue.push("k", x))
		);
		expect(results.map(r => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
		expect((results[1] as PromiseRejectedResult).reason.message).toBe("refused");
	});

	it("a batch whose processing throws fails as a whole, and the key's next batch still runs", async () => {
		let calls = 0;
		const queue = createBatchQueue<string, string>(async (_key, inputs) => {
			calls++;
			if (calls === 1) throw new Error("store down");
			return echo(inputs);
		}, 10);
		const failed = queue.push("k", "a");
		const later = queue.push("k", "b");
		await expect(failed).rejects.toThrow("store down");
		await expect(later).resolves.toBe("B");
		expect(queue.size).toBe(0);
	});
});
