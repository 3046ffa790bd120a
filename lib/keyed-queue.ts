/**
 * Runs tasks one at a time per key (a show id), in arrival order, while tasks for other keys run
 * freely. This is what serialises every write to one show on the node that owns it, so correctness
 * never rests on the store's own atomicity (FerretDB's updates are read-then-write).
 */
export interface KeyedQueue {
	run<T>(key: string, task: () => Promise<T>): Promise<T>;
	/** Tasks waiting or running, over all keys. */
	readonly size: number;
}

export function createKeyedQueue(): KeyedQueue {
	const tails = new Map<string, Promise<unknown>>();
	let size = 0;

	return {
		get size() {
			return size;
		},
		run<T>(key: string, task: () => Promise<T>): Promise<T> {
			const previous = tails.get(key) ?? Promise.resolve();
			size++;
			const result = previous.then(task, task);
			const tail = result.then(
				() => undefined,
				() => undefined
			);
			tails.set(key, tail);
			void tail.then(() => {
				size--;
				// Forget the key once nothing else queued behind this task.
				if (tails.get(key) === tail) tails.delete(key);
			});
			return result;
		}
	};
}
