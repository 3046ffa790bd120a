/**
 * GET /events: server-sent events of seat changes, fed by the `shows.changed` broadcast that every
 * gateway node receives. Each node numbers its own events `<boot>-<seq>`: a client that reconnects
 * with `Last-Event-ID` gets the events it missed from a bounded backlog, or, when its id is too old
 * or came from another node (or an earlier run of this one), a fresh `snapshot` event. Values are
 * absolute (`reserved`, `available`), never deltas, so applying an event twice or late is harmless.
 */
import crypto from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "moleculer";
import { Errors } from "moleculer";
import type { PublicShow } from "../common/types";

interface EventStreamOptions {
	/** Open streams this node serves at most; beyond it, 503 with Retry-After. */
	maxStreams: number;
	/** Open streams one client address gets at most, so that one client cannot take them all. */
	maxStreamsPerClient: number;
	/** The address a request comes from, as the rate limit sees it (lib/gateway/client-address.ts). */
	clientOf(req: IncomingMessage): string;
	/** A comment line this often keeps proxies and the socket from timing out an idle stream. */
	heartbeatMs: number;
	/** Events kept for clients that reconnect with Last-Event-ID. */
	backlog: number;
	/**
	 * A stream is ended after this long (0: never). The client reconnects with Last-Event-ID and
	 * loses nothing, and long-lived streams spread again over the gateway nodes there are now.
	 */
	maxStreamMs: number;
	/** The shows as this node knows them now, for a snapshot (`ctx`: the HTTP request's). */
	loadShows(ctx: Context | undefined): Promise<PublicShow[]>;
	logger: { warn(...args: unknown[]): void };
}

/** moleculer-web puts the request's context on it. */
type StreamRequest = IncomingMessage & { $ctx?: Context };

/** The part of a show a change event carries. */
type SeatChange = Pick<PublicShow, "_id" | "reserved" | "available">;

export interface EventStream {
	/** Serves one GET /events request; throws a 503 error when the node has no room for it. */
	open(req: StreamRequest, res: ServerResponse): Promise<void>;
	/** A show changed: tell every open stream. */
	publish(show: PublicShow): void;
	/**
	 * This node may have missed changes (it was cut off from the cluster, or a shows node did not
	 * know it yet): forget the backlog and end the streams, so that every client reconnects to a
	 * fresh snapshot.
	 */
	resync(): void;
	/** Ends every stream (shutdown); clients reconnect, to another node if there is one. */
	close(): void;
	readonly size: number;
}

/** Shows in a snapshot at most (as GET /'s largest page); the total says when there are more. */
const SNAPSHOT_LIMIT = 1000;
/** A client that reads this far behind is cut off; it comes back with Last-Event-ID. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** The reconnection delay EventSource is told to use. */
const RECONNECT_MS = 3000;
const RETRY_AFTER_FULL_S = 5;

interface Backlogged {
	seq: number;
	frame: string;
}

function tooManyStreams(max: number, whose = "this node already serves") {
	return new Errors.MoleculerError(
		`${whose} ${max} event streams; try again shortly`,
		503,
		"TOO_MANY_STREAMS",
		{ retryAfter: RETRY_AFTER_FULL_S }
	);
}

function frame(id: string, event: string, data: unknown): string {
	return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function createEventStream(options: EventStreamOptions): EventStream {
	/** Tells this run's ids from another node's, an earlier run's or those before a resync. */
	let boot = crypto.randomBytes(4).toString("hex");
	let seq = 0;
	const backlog: Backlogged[] = [];
	const clients = new Set<ServerResponse>();
	/** Open streams by client address; an address with none is not kept. */
	const perClient = new Map<string, number>();
	/** What each show's last event said: a write that changed no count (a confirm) is not news. */
	const lastSent = new Map<string, string>();
	let closed = false;

	const idOf = (n: number) => `${boot}-${n}`;
	const framesAfter = (n: number) =>
		backlog
			.filter(e => e.seq > n)
			.map(e => e.frame)
			.join("");

	function send(res: ServerResponse, text: string): void {
		if (res.writableLength > MAX_BUFFERED_BYTES) {
			options.logger.warn("Closing an event stream whose client does not keep up");
			res.end();
			return;
		}
		res.write(text);
	}

	/** The events after `lastId`, or null when they are not all in the backlog any more. */
	function missedSince(lastId: string | undefined): string | null {
		const match = lastId && /^([0-9a-f]{8})-(\d{1,15})$/.exec(lastId);
		if (!match || match[1] !== boot) return null;
		const last = Number(match[2]);
		const oldest = backlog.length > 0 ? backlog[0].seq : seq + 1;
		if (last > seq || last < oldest - 1) return null;
		return framesAfter(last);
	}

	/** The shows now, then whatever changed while they loaded (absolute values: repeats are harmless). */
	async function snapshot(ctx: Context | undefined): Promise<string> {
		const at = seq;
		const shows = await options.loadShows(ctx);
		const data = { shows: shows.slice(0, SNAPSHOT_LIMIT), total: shows.length };
		return frame(idOf(at), "snapshot", data) + framesAfter(at);
	}

	function endAll(): void {
		for (const res of clients) res.end();
		clients.clear();
		perClient.clear();
	}

	function refuseWhenFull(client: string): void {
		if (closed || clients.size >= options.maxStreams) throw tooManyStreams(options.maxStreams);
		const mine = options.maxStreamsPerClient;
		if ((perClient.get(client) ?? 0) >= mine)
			throw tooManyStreams(mine, "this client already has");
	}

	function track(res: ServerResponse, client: string): void {
		clients.add(res);
		perClient.set(client, (perClient.get(client) ?? 0) + 1);
		res.once("close", () => {
			// Already gone when endAll cleared everything.
			if (!clients.delete(res)) return;
			const left = (perClient.get(client) ?? 1) - 1;
			if (left > 0) perClient.set(client, left);
			else perClient.delete(client);
		});
	}

	const heartbeat = setInterval(() => {
		for (const res of clients) send(res, ": heartbeat\n\n");
	}, options.heartbeatMs);
	heartbeat.unref();

	return {
		get size() {
			return clients.size;
		},

		async open(req, res) {
			const client = options.clientOf(req);
			refuseWhenFull(client);
			const lastHeader = req.headers["last-event-id"];
			const lastId = Array.isArray(lastHeader) ? lastHeader[0] : lastHeader;
			// Loaded before answering, so that a shows service that is down gets its 503.
			const first = missedSince(lastId) ?? (await snapshot(req.$ctx));
			// Checked again, and counted at once after: streams opened together all waited above.
			refuseWhenFull(client);
			if (req.destroyed) return;
			// An open stream is not idle: no socket timeout; frames go out at once.
			req.socket.setTimeout(0);
			req.socket.setNoDelay(true);
			res.writeHead(200, {
				"Content-Type": "text/event-stream; charset=utf-8",
				"Cache-Control": "no-store",
				"X-Accel-Buffering": "no"
			});
			res.write(`retry: ${RECONNECT_MS}\n\n${first}`);
			track(res, client);
			const lifetime =
				options.maxStreamMs > 0 ? setTimeout(() => res.end(), options.maxStreamMs) : null;
			lifetime?.unref();
			if (lifetime) res.once("close", () => clearTimeout(lifetime));
		},

		publish(show) {
			const counts = `${show.reserved}/${show.available}`;
			if (lastSent.get(show._id) === counts) return;
			lastSent.set(show._id, counts);
			seq++;
			const change: SeatChange = {
				_id: show._id,
				reserved: show.reserved,
				available: show.available
			};
			const text = frame(idOf(seq), "seats", change);
			backlog.push({ seq, frame: text });
			if (backlog.length > options.backlog) backlog.shift();
			for (const res of clients) send(res, text);
		},

		resync() {
			boot = crypto.randomBytes(4).toString("hex");
			backlog.length = 0;
			lastSent.clear();
			endAll();
		},

		close() {
			closed = true;
			clearInterval(heartbeat);
			endAll();
		}
	};
}

/** The gateway route of GET /events, for a service that keeps its stream in `eventStream`. */
export const eventsRoute = {
	name: "events",
	path: "",
	mappingPolicy: "restrict",
	bodyParsers: false,
	aliases: {
		"GET /events"(
			this: { eventStream: EventStream },
			req: StreamRequest,
			res: ServerResponse,
			next: (err?: Error) => void
		) {
			// Only a refusal comes back through `next`; an open stream answers by itself.
			this.eventStream.open(req, res).catch(next);
		}
	}
};
