/**
 * HTTP as a hostile client speaks it: bytes written to a socket as they are, for what fetch will
 * not send (a lying Content-Length, a body that trickles, headers over Node's limit, bad bytes).
 */
import net from "node:net";
import zlib from "node:zlib";

export interface RawAnswer {
	status: number;
	headers: Record<string, string>;
	/** The body as text (chunked encoding undone); `json` when it parses. */
	text: string;
	json: any;
}

function parse(raw: Buffer): RawAnswer {
	const text = raw.toString("utf8");
	const split = text.indexOf("\r\n\r\n");
	const head = split >= 0 ? text.slice(0, split) : text;
	let body = split >= 0 ? text.slice(split + 4) : "";
	const [statusLine, ...lines] = head.split("\r\n");
	const headers: Record<string, string> = {};
	for (const line of lines) {
		const at = line.indexOf(":");
		headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
	}
	if (headers["transfer-encoding"] === "chunked") {
		let out = "";
		for (;;) {
			const eol = body.indexOf("\r\n");
			const size = parseInt(body.slice(0, eol), 16);
			if (!size) break;
			out += body.slice(eol + 2, eol + 2 + size);
			body = body.slice(eol + 2 + size + 2);
		}
		body = out;
	}
	let json: any = null;
	try {
		json = JSON.parse(body);
	} catch {
		// not JSON: left null, the assertion shows the text
	}
	return { status: Number(statusLine.split(" ")[1]), headers, text: body, json };
}

/**
 * Writes `head` (the request line and headers, without the blank line) and `body`, then waits for
 * the server's answer and for it to close the connection. `trickleMs`: after the body, one more
 * byte (or `trickle`) every so often until the answer comes, as a client that never finishes.
 */
export function rawRequest(
	port: number,
	head: string,
	body: Buffer | string = "",
	opts: { trickleMs?: number; trickle?: string } = {}
): Promise<RawAnswer> {
	return new Promise((resolve, reject) => {
		const socket = net.connect(port, "127.0.0.1");
		const chunks: Buffer[] = [];
		let timer: NodeJS.Timeout | null = null;
		socket.on("data", d => {
			if (timer) clearInterval(timer);
			chunks.push(d);
			// One answer is all a test needs; a keep-alive connection would stay open.
			const got = parse(Buffer.concat(chunks));
			const length = Number(got.headers["content-length"] ?? -1);
			if (length >= 0 && Buffer.byteLength(got.text) >= length && got.status) socket.end();
		});
		socket.on("close", () => {
			if (timer) clearInterval(timer);
			resolve(parse(Buffer.concat(chunks)));
		});
		socket.on("error", err => (chunks.length > 0 ? undefined : reject(err)));
		socket.write(`${head}\r\n\r\n`);
		if (body.length > 0) socket.write(body);
		if (opts.trickleMs)
			timer = setInterval(
				() => socket.writable && socket.write(opts.trickle ?? " "),
				opts.trickleMs
			);
	});
}

/** A body compressed as `encoding` says, then broken: its first bytes changed. */
export function brokenlyEncoded(encoding: "gzip" | "deflate" | "br", text: string): Buffer {
	const packed =
		encoding === "gzip"
			? zlib.gzipSync(text)
			: encoding === "deflate"
				? zlib.deflateSync(text)
				: zlib.brotliCompressSync(text);
	const broken = Buffer.from(packed);
	for (let i = 0; i < Math.min(6, broken.length); i++) broken[i] ^= 0xff;
	return broken;
}
