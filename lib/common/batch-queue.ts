/**
 * Collects work per key (a show id) and hands it over in batches: one batch at a time per key, in
 * arrival order, and whatever arrives while a key's batch runs forms that key's next batch. Keys do
 * not wait for each other.
 *
 * This serialises every write to one show on the node that owns it, so correctness never rests on
 * the store's own atomicity, and lets one document write carry many checkouts at once (group
 * commit): the busier a show, the more each write does.
 */
export type Outcome<Out> = { ok: true; value: Out } | { ok: false; error: unknown };

interface BatchQueue<In, Out> {
	/** Queues `input` under `key`; settles with its own outcome from the batch it ran in. */
	push(key: string, input: In): Promise<Out>;
	/** Inputs waiting or running, over all keys. */
	readonly size: number;
}

interface Waiting<In, Out> {
	input: In;
	resolve(value: Out): void;
	reject(error: unknown): void;
}

/**
 * `process` gets a key's inputs in arrival order and returns one outcome per input, in the same
 * order. If it throws, every input of that batch fails with that error.
 */
export function createBatchQueue<In, Out>(
	process: (key: string, inputs: In[]) => Promise<Outcome<Out>[]>,
	maxBatch: number
): BatchQueue<In, Out> {
	const waiting = new Map<string, Waiting<In, Out>[]>();
	let size = 0;

	async function drain(key: string, queue: Waiting<In, Out>[]): Promise<void> {
		while (queue.length > 0) {
			const batch = queue.splice(0, maxBatch);
			try {
				const outcomes = await process(
					key,
					batch.map(w => w.input)
				);
				batch.forEach((w, i) => {
					const outcome = outcomes[i];
					if (outcome.ok) w.resolve(outcome.value);
					else w.reject(outcome.error);
				});
			} catch (error) {
				for (const w of batch) w.reject(error);
			} finally {
				size -= batch.length;
			}
		}
		waiting.delete(key);
	}

	return {
		get size() {
			return size;
		},
		push(key: string, input: In): Promise<Out> {
			return new Promise<Out>((resolve, reject) => {
				size++;
				const queue = waiting.get(key);
				if (queue) queue.push({ input, resolve, reject });
				else {
					const fresh = [{ input, resolve, reject }];
					waiting.set(key, fresh);
					void drain(key, fresh);
				}
			});
		}
	};
}
