/**
 * The application's settings, all read from the environment in one place (`appConfig`). A value
 * that cannot work stops the process here with a clear message. Imports nothing of the project.
 */
import cluster from "node:cluster";
import path from "node:path";

type Env = Record<string, string | undefined>;

const DEFAULT_METRICS_PORT = 3030;

export class ConfigError extends Error {
	override name = "ConfigError";
}

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
	const raw = env[name];
	if (raw === undefined || raw.trim() === "") return fallback;
	const value = Number(raw);
	if (!Number.isInteger(value) || value < min || value > max)
		throw new ConfigError(
			`${name}=${raw} is invalid: expected a whole number from ${min} to ${max}`
		);
	return value;
}

/** Longest chain of proxies TRUST_PROXY may name. */
const MAX_TRUSTED_HOPS = 32;

function readTrustProxy(env: Env): number {
	const raw = env.TRUST_PROXY?.trim().toLowerCase();
	if (raw === "true") return 1;
	if (raw === "false") return 0;
	return readInt(env, "TRUST_PROXY", 0, 0, MAX_TRUSTED_HOPS);
}

function readMongoUri(env: Env): string | null {
	const raw = env.MONGO_URI?.trim();
	if (!raw) return null;
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new ConfigError(`MONGO_URI is not a URL: expected mongodb://host:27017`);
	}
	if (url.protocol !== "mongodb:" && url.protocol !== "mongodb+srv:")
		throw new ConfigError(`MONGO_URI must start with mongodb:// or mongodb+srv://`);
	if (!url.hostname) throw new ConfigError(`MONGO_URI has no host`);
	return raw;
}

/** A URL with its password (or token) replaced, for messages. */
function redacted(url: string): string {
	return url.replace(/\/\/[^@/]*@/g, "//***@");
}

function isNatsUrl(entry: string): boolean {
	if (!/^nats:\/\/[^\s/]+/.test(entry)) return false;
	try {
		return new URL(entry).hostname !== "";
	} catch {
		return false;
	}
}

/**
 * One NATS server, or a comma-separated list naming the servers of a NATS cluster (the client
 * connects to one and fails over to the others). Every entry is checked here: the transporter
 * would take a bad one as a server with no host and fail only when it tries it.
 */
function readTransporter(env: Env): string | null {
	const raw = env.TRANSPORTER?.trim();
	if (!raw) return null;
	const entries = raw.split(",").map(entry => entry.trim());
	const bad = entries.findIndex(entry => !isNatsUrl(entry));
	if (bad >= 0) {
		// Only the entry's number: a password with a comma in it spans two entries.
		const which = entries.length > 1 ? ` (entry ${bad + 1})` : "";
		throw new ConfigError(
			`TRANSPORTER=${redacted(raw)} is invalid${which}: expected nats://host:4222 ` +
				`(or nats://user:password@host:4222), or a comma-separated list of them`
		);
	}
	return raw;
}

/**
 * NATS credentials from named variables, for passwords that do not fit in a URL. (In the URL,
 * nats://user:password@host:4222, they need no variable.) Never logged.
 */
function readNatsAuth(env: Env): { user?: string; pass?: string; token?: string } {
	const user = env.NATS_USER?.trim() || undefined;
	const pass = env.NATS_PASSWORD || undefined;
	const token = env.NATS_TOKEN || undefined;
	if (Boolean(user) !== Boolean(pass))
		throw new ConfigError("NATS_USER and NATS_PASSWORD go together: set both or neither");
	if (token && user) throw new ConfigError("set NATS_TOKEN or NATS_USER/NATS_PASSWORD, not both");
	return token ? { token } : user ? { user, pass } : {};
}

/** `--instances N` / `-i N` as moleculer-runner sees it; cluster workers inherit the same argv. */
function requestedInstances(argv: string[]): number {
	const at = argv.findIndex(a => a === "--instances" || a === "-i");
	if (at < 0) return 1;
	const n = Number(argv[at + 1]);
	return Number.isInteger(n) && n > 0 ? n : 2;
}

export function loadAppConfig(env: Env = process.env, argv: string[] = process.argv) {
	const mongoUri = readMongoUri(env);
	const transporter = readTransporter(env);
	const services = (env.SERVICES ?? "shows,reservations,api")
		.split(",")
		.map(s => s.trim())
		.filter(Boolean);
	const instances = requestedInstances(argv);
	const ownsStore = services.some(s => s === "shows" || s === "reservations");
	if (!mongoUri && instances > 1 && ownsStore)
		throw new ConfigError(
			`--instances ${instances} with SERVICES=${services.join(",")} needs MONGO_URI: ` +
				`an embedded NeDB store belongs to exactly one process. ` +
				`Run the store-owning services once, or set MONGO_URI to scale them out.`
		);

	// A cluster worker gets its own metrics port so that every node can be scraped.
	const workerOffset = cluster.isWorker && cluster.worker ? cluster.worker.id - 1 : 0;
	const metricsPort = readInt(env, "METRICS_PORT", DEFAULT_METRICS_PORT, 0, 65535);

	return {
		services,
		transporter,
		natsAuth: readNatsAuth(env),
		mongoUri,
		mongoDatabasePrefix: env.MONGO_DB_PREFIX ?? "",
		dataDir: path.resolve(env.DATA_DIR || "./data"),
		logLevel: env.LOG_LEVEL || "info",
		/** The gateway logs one line per request at info level, and below it (debug, trace). */
		accessLog: ["info", "debug", "trace"].includes(env.LOG_LEVEL || "info"),
		port: readInt(env, "PORT", 3000, 0, 65535),
		/** Seconds an unconfirmed hold lives before its seats return. */
		holdTtlSeconds: readInt(env, "HOLD_TTL", 600, 1, 86400),
		/** How often each shows node looks for expired holds, and reservations for stuck checkouts. */
		sweepIntervalMs: readInt(env, "SWEEP_INTERVAL_MS", 5000, 100, 600000),
		/**
		 * Extra wait past a hold's deadline before a pending checkout counts as abandoned, and before
		 * a cancel's listed release is repeated.
		 */
		reconcileGraceMs: readInt(env, "RECONCILE_GRACE_MS", 5000, 0, 600000),
		/** Tickets in one order (pretix defaults to 10, alf.io to 5). */
		maxTicketsPerOrder: readInt(env, "MAX_TICKETS_PER_ORDER", 10, 1, 1000),
		/** Checkouts per minute per client address; 0 turns the limit off. */
		rateLimitPerMinute: readInt(env, "RATE_LIMIT", 120, 0, 1000000),
		/** Largest accepted request body, JSON or form. */
		bodyLimitBytes: readInt(env, "BODY_LIMIT", 16 * 1024, 256, 1024 * 1024),
		/** How long a request body may take to arrive before the gateway answers 408. */
		bodyTimeoutMs: readInt(env, "BODY_TIMEOUT_MS", 5000, 100, 120000),
		/** Idempotency-Keys are kept at least this long (pretix and Stripe: 24 hours). */
		idempotencyKeyHours: readInt(env, "IDEMPOTENCY_KEY_HOURS", 24, 24, 24 * 365),
		/** Budget for one whole checkout; every step shares it (Moleculer's distributed timeouts). */
		checkoutTimeoutMs: readInt(env, "CHECKOUT_TIMEOUT_MS", 10000, 100, 120000),
		/**
		 * How far the nodes' clocks may disagree: shows refuses a checkout's step this long past
		 * its deadline, and a hold made for a checkout lives until its deadline plus this.
		 */
		clockSkewMs: readInt(env, "CLOCK_SKEW_MS", 1000, 0, 60000),
		/**
		 * Connections the kernel may hold for the gateway before it accepts them (capped by
		 * net.core.somaxconn). Node's 511 overflows when an on-sale crowd connects at once, and an
		 * overflowed connection waits a second or more for its SYN to be sent again.
		 */
		listenBacklog: readInt(env, "LISTEN_BACKLOG", 4096, 1, 65535),
		/**
		 * Listening sockets sharing the gateway's port (SO_REUSEPORT): libuv accepts one connection
		 * per socket per turn of the event loop, and a busy gateway turns its loop a few hundred
		 * times a second. 1: one plain socket.
		 */
		listenSockets: readInt(env, "LISTEN_SOCKETS", 16, 1, 256),
		/**
		 * How long the gateway keeps an idle keep-alive connection: past the longest Retry-After it
		 * gives (60 s), so that a buyer sent back keeps its connection, and past the 60 s idle
		 * timeout of common proxies and load balancers, so that none reuses one it has just closed.
		 */
		keepAliveTimeoutMs: readInt(env, "KEEP_ALIVE_TIMEOUT_MS", 65000, 1000, 600000),
		/** Checkouts one gateway node runs at once; more wait in its queue (lib/gateway/admission.ts). */
		admissionConcurrency: readInt(env, "ADMISSION_CONCURRENCY", 64, 1, 100000),
		/** Checkouts that may wait for a slot; beyond, the gateway answers 503 at once. */
		admissionQueue: readInt(env, "ADMISSION_QUEUE", 4096, 0, 1000000),
		/**
		 * Longest a checkout waits in the queue before it is refused: well under a client's timeout;
		 * a newcomer is queued only when its expected wait is half this or less (docs/design.md).
		 */
		admissionQueueWaitMs: readInt(env, "ADMISSION_QUEUE_WAIT_MS", 1500, 0, 60000),
		/** A refused checkout is told to retry after this many seconds, up to twice that (jitter). */
		admissionRetryAfterS: readInt(env, "ADMISSION_RETRY_AFTER_S", 1, 1, 3600),
		/**
		 * Housekeeping removals nobody waits on (finished to-do entries, old version claims) gather
		 * this long, to go to the store together.
		 */
		cleanupDelayMs: readInt(env, "STORE_CLEANUP_DELAY_MS", 500, 0, 10000),
		/** Updates and removals an embedded NeDB file takes before it is compacted. */
		nedbCompactAfterWrites: readInt(env, "NEDB_COMPACT_AFTER_WRITES", 2000, 1, 10000000),
		/** Documents in one embedded store past which a node warns at start to move to MongoDB. */
		embeddedWarnDocuments: readInt(env, "EMBEDDED_WARN_DOCUMENTS", 200000, 1, 1000000000),
		/**
		 * Sales and release records a shows node keeps in memory, over all the shows it writes, so
		 * that a cancel need not look them up in the store (lib/shows/settled-records.ts): about 150 bytes each.
		 */
		settledRecordsInMemory: readInt(env, "SETTLED_RECORDS_IN_MEMORY", 500000, 0, 100000000),
		/** Seconds clients and proxies may reuse a read (`GET /`, `GET /shows/:id`): a few at most. */
		readMaxAgeSeconds: readInt(env, "READ_MAX_AGE_S", 2, 0, 60),
		/** Longest the gateway trusts its cached show list without an event having refreshed it. */
		showsCacheTtlMs: readInt(env, "SHOWS_CACHE_TTL_MS", 30000, 0, 3600000),
		/** GET /events: open streams per gateway node at most (503 beyond), heartbeat, backlog. */
		eventsMaxStreams: readInt(env, "EVENTS_MAX_STREAMS", 1000, 1, 100000),
		/** GET /events: open streams per client address at most, so that one cannot take them all. */
		eventsMaxStreamsPerClient: readInt(env, "EVENTS_MAX_STREAMS_PER_CLIENT", 4, 1, 100000),
		eventsHeartbeatMs: readInt(env, "EVENTS_HEARTBEAT_MS", 15000, 100, 600000),
		eventsBacklog: readInt(env, "EVENTS_BACKLOG", 1000, 0, 100000),
		/** An event stream ends after this long; its client resumes it with Last-Event-ID. */
		eventsMaxStreamMs: readInt(env, "EVENTS_MAX_STREAM_MS", 600000, 0, 86400000),
		metricsPort: metricsPort === 0 ? 0 : metricsPort + workerOffset,
		/** Only the default port may move to a free one; a port the operator chose must be that port. */
		metricsPortChosen: Boolean(env.METRICS_PORT?.trim()),
		// Not `TRACING`: moleculer-runner overwrites any broker option named like an env variable.
		tracing: env.TRACE_EXPORTER === "console",
		corsOrigins: (env.CORS_ORIGINS ?? "")
			.split(",")
			.map(s => s.trim())
			.filter(Boolean),
		/** A step of a checkout that hears nothing within this long fails (the broker's requestTimeout). */
		requestTimeoutMs: readInt(env, "REQUEST_TIMEOUT_MS", 5000, 100, 120000),
		/**
		 * Proxies in front of the gateway whose X-Forwarded-For entries are believed, counted from the
		 * right (lib/gateway/client-address.ts); 0: the socket's address. `true` means 1, as it used to.
		 */
		trustProxy: readTrustProxy(env)
	};
}

type AppConfig = ReturnType<typeof loadAppConfig>;

export const appConfig: AppConfig = loadAppConfig();
