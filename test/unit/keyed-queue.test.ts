import { createKeyedQueue } from "../../lib/keyed-queue";

/** A promise whose settlement the test controls. */
function deferred<T = void>() {
	let resolve!: (value: T) => void;
	let reject!: (err: Error) => void;
	const promise = new Promise<T>((res, rej) => {
		resolve = res;
		reject = rej;
	});
	return { promise, resolve, reject };
}

/** Lets every already-settled promise callback run. */
function flush(): Promise<void> {
	return new Promise(resolve => setImmediate(resolve));
}

describe("keyed queue", () => {
	it("runs the tasks of one key one at a time, in arrival order", async () => {
		const queue = createKeyedQueue();
		const log: string[] = [];
		let running = 0;
		let maxRunning = 0;
		const task = (name: string) => async () => {
			running++;
			maxRunning = Math.max(maxRunning, running);
			log.push(`start ${name}`);
			await flush();
			log.push(`end ${name}`);
			running--;
			return name;
		};
		const results = await Promise.all(
			["a", "b", "c", "d"].map(n => queue.run("show", task(n)))
		);
		expect(results).toEqual(["a", "b", "c", "d"]);
		expect(maxRunning).toBe(1);
		expect(log).toEqual([
			"start a",
			"end a",
			"start b",
			"end b",
			"start c",
			"end c",
			"start d",
			"end d"
		]);
	});

	it("a task of one key does not wait for a blocked task of another key", async () => {
		const queue = createKeyedQueue();
		const blocker = deferred();
		const blocked = queue.run("show-1", () => blocker.promise);
		await expect(queue.run("show-2", async () => "free")).resolves.toBe("free");
		let secondOfShow1Ran = false;
		const queued = queue.run("show-1", async () => {
			secondOfShow1Ran = true;
		});
		await flush();
		expect(secondOfShow1Ran).toBe(false);
		blocker.resolve();
		await Promise.all([blocked, queued]);
		expect(secondOfShow1Ran).toBe(true);
	});

	it("a failing task rejects its own caller and the next task of the key still runs", async () => {
		const queue = createKeyedQueue();
		const failing = queue.run("show", async () => {
			throw new Error("boom");
		});
		const next = queue.run("show", async () => "after");
		await expect(failing).rejects.toThrow("boom");
		await expect(next).resolves.toBe("after");
	});

	it("a task that throws synchronously rejects its caller instead of breaking the queue", async () => {
		const queue = createKeyedQueue();
		const failing = queue.run("show", () => {
			throw new Error("sync boom");
		});
		await expect(failing).rejects.toThrow("sync boom");
		await expect(queue.run("show", async () => 1)).resolves.toBe(1);
	});

	it("size counts waiting and running tasks over all keys and returns to 0", async () => {
		const queue = createKeyedQueue();
		expect(queue.size).toBe(0);
		const gate = deferred();
		const runs = [
			queue.run("a", () => gate.promise),
			queue.run("a", async () => undefined),
			queue.run("b", () => gate.promise)
		];
		expect(queue.size).toBe(3);
		gate.resolve();
		await Promise.all(runs);
		await flush();
		expect(queue.size).toBe(0);
	});

	it("a key can be used again after its queue drained", async () => {
		const queue = createKeyedQueue();
		await queue.run("show", async () => 1);
		await flush();
		const order: number[] = [];
		await Promise.all([
			queue.run("show", async () => {
				await flush();
				order.push(1);
			}),
			queue.run("show", async () => {
				order.push(2);
			})
		]);
		expect(order).toEqual([1, 2]);
	});
});
