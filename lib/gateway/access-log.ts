/**
 * The gateway's access log, off the hot path: a request's line goes into a buffer, and the buffer
 * goes to stdout in one write on a short timer or once it is large. Written line by line through
 * the broker's logger it cost 15-20% of `GET /` throughput (a format and a write per request). The
 * buffer is also written synchronously when the process exits (SIGTERM and a normal stop end in
 * `exit`) and on an uncaught exception, so a crash does not lose the lines that led to it; only a
 * SIGKILL loses the last `flushMs` of lines.
 */
interface AccessLogOptions {
	/** Longest a line waits in the buffer. */
	flushMs: number;
	/** A buffer this large is written at once. */
	maxBufferBytes: number;
	/** Where the lines go: stdout, whose writes to a file or a pipe are synchronous (so it serves at exit). */
	write?: (text: string) => void;
}

interface AccessLog {
	/** Buffers one line (without its newline). */
	line(text: string): void;
	/** Writes what is buffered, now. */
	flush(): void;
}

export function createAccessLog(options: AccessLogOptions): AccessLog {
	const write = options.write ?? ((text: string) => void process.stdout.write(text));
	let lines: string[] = [];
	let bytes = 0;
	let timer: NodeJS.Timeout | null = null;

	function flush(): void {
		if (timer) clearTimeout(timer);
		timer = null;
		if (lines.length === 0) return;
		const text = lines.join("");
		lines = [];
		bytes = 0;
		try {
			write(text);
		} catch {
			// stdout gone (a closed pipe): nothing else to do with a log line.
		}
	}

	return {
		line(text) {
			// Moleculer's "short" console format, so that the lines read like the others.
			const entry = `[${new Date().toISOString().substring(11)}] INFO  API: ${text}\n`;
			lines.push(entry);
			bytes += entry.length;
			if (bytes >= options.maxBufferBytes) flush();
			else timer ??= setTimeout(flush, options.flushMs).unref();
		},
		flush
	};
}

const FLUSH_MS = 200;
const MAX_BUFFER_BYTES = 64 * 1024;

/** The process's access log; its buffer is written at exit and on an uncaught exception. */
export const accessLog = createAccessLog({ flushMs: FLUSH_MS, maxBufferBytes: MAX_BUFFER_BYTES });
process.on("exit", accessLog.flush);
// A monitor, not a handler: the process still crashes as it would have.
process.on("uncaughtExceptionMonitor", accessLog.flush);
