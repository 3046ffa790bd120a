/** Reads a text/event-stream over real HTTP, for tests of GET /events. */

export interface SseFrame {
	id?: string;
	event?: string;
	data?: string;
	/** Comment lines (": heartbeat"), without the colon. */
	comments: string[];
	retry?: number;
}

export interface SseReader {
	status: number;
	headers: Headers;
	/** Every frame so far, in order. */
	frames: SseFrame[];
	/** Waits until `count` frames matching `match` have arrived (or fails after timeoutMs). */
	waitFor(
		match: (f: SseFrame) => boolean,
		count?: number,
		timeoutMs?: number
	): Promise<SseFrame[]>;
	/** Resolves when the server ends the stream. */
	ended: Promise<void>;
	close(): void;
}

function parseFrame(block: string): SseFrame {
	const frame: SseFrame = { comments: [] };
	for (const line of block.split("\n")) {
		if (line.startsWith(":")) frame.comments.push(line.slice(1).trim());
		const at = line.indexOf(":");
		if (at <= 0) continue;
		const field = line.slice(0, at);
		const value = line.slice(at + 1).replace(/^ /, "");
		if (field === "id") frame.id = value;
		else if (field === "event") frame.event = value;
		else if (field === "data")
			frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
		else if (field === "retry") frame.retry = Number(value);
	}
	return frame;
}

export async function openEvents(
	baseUrl: string,
	headers: Record<string, string> = {}
): Promise<SseReader> {
	const controller = new AbortController();
	const res = await fetch(`${baseUrl}/events`, { headers, signal: controller.signal });
	const frames: SseFrame[] = [];
	const waiters = new Set<() => void>();
	let buffer = "";
	const ended = (async () => {
		if (!res.body || !res.headers.get("content-type")?.startsWith("text/event-stream")) return;
		const decoder = new TextDecoder();
		try {
			for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
				buffer += decoder.decode(chunk, { stream: true });
				let end: number;
				while ((end = buffer.indexOf("\n\n")) >= 0) {
					frames.push(parseFrame(buffer.slice(0, end)));
					buffer = buffer.slice(end + 2);
				}
				for (const wake of waiters) wake();
			}
		} catch {
			// aborted by close()
		}
	})();
	return {
		status: res.status,
		headers: res.headers,
		frames,
		ended,
		close: () => controller.abort(),
		waitFor(match, count = 1, timeoutMs = 10000) {
			return new Promise((resolve, reject) => {
				const check = () => {
					const found = frames.filter(match);
					if (found.length < count) return false;
					waiters.delete(check);
					clearTimeout(timer);
					resolve(found);
					return true;
				};
				const timer = setTimeout(() => {
					waiters.delete(check);
					reject(
						new Error(`timed out waiting for frames; got ${JSON.stringify(frames)}`)
					);
				}, timeoutMs);
				waiters.add(check);
				check();
			});
		}
	};
}
