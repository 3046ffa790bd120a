/**
 * The broker options for moleculer-runner: transporter, timeouts, retries, metrics and the REPL's
 * commands. The settings they use come from the environment through lib/common/config.ts.
 */
import type { Server } from "node:http";
import type { BrokerOptions, Errors, Middleware, ServiceBroker } from "moleculer";
import { appConfig } from "./lib/common/config";
import { embeddedStoreOwner } from "./lib/store/embedded-store-owner";
import { replCommands } from "./lib/operations/repl-commands";
import { schemaVersionMiddleware } from "./lib/common/schema-version";
import { natsClientOptions, natsReconnects } from "./lib/common/moleculer-internals";

/** How far a taken default metrics port moves up (several `--instances` groups on one host). */
const METRICS_PORT_SEARCH = 100;

interface MetricsReporter {
	server?: Server;
	opts: { host?: string };
	stop(): Promise<void>;
}

/**
 * In a moleculer-runner `--instances` group the primary's `cluster.disconnect()` closes each
 * worker's metrics server while the worker's broker stops, and the reporter's own close of a closed
 * server logged ERR_SERVER_NOT_RUNNING with a stack on a clean stop. Only a listening one is closed.
 */
function closeMetricsServerOnce(reporter: MetricsReporter, server: Server): void {
	const stop = reporter.stop.bind(reporter);
	reporter.stop = () => (server.listening ? stop() : Promise.resolve());
}

/**
 * A second process on a running embedded system's store stops with one plain line before it opens
 * the store. Left to the store's own lock check, the refusal came while loading the service:
 * Moleculer logged it with its stack, and moleculer-runner logged it again.
 */
const embeddedStoreGuard: Middleware = {
	name: "EmbeddedStoreGuard",
	serviceCreating(service: { broker: ServiceBroker }, schema: { name?: string }) {
		if (appConfig.mongoUri || (schema.name !== "shows" && schema.name !== "reservations"))
			return;
		const owner = embeddedStoreOwner(appConfig.dataDir, [schema.name]);
		if (!owner) return;
		service.broker.logger.fatal(
			`The embedded store in ${owner.folder} is already used by process ${owner.pid}. ` +
				`An embedded NeDB store belongs to one process: stop the other one, ` +
				`give this one another DATA_DIR, or set MONGO_URI to run several instances.`
		);
		process.exit(1);
	}
};

function moveMetricsPortWhenTaken(broker: ServiceBroker, server: Server, opts: { host?: string }) {
	const first = appConfig.metricsPort;
	let port = first;
	server.on("error", (err: NodeJS.ErrnoException) => {
		if (
			err.code === "EADDRINUSE" &&
			!appConfig.metricsPortChosen &&
			port < first + METRICS_PORT_SEARCH
		) {
			port += 1;
			// exclusive: a cluster worker binds the port itself instead of sharing its primary's
			// handle, so two workers of one group never end up on one port.
			server.close(() => undefined);
			server.listen({ port, host: opts.host, exclusive: true });
			return;
		}
		broker.fatal(
			`METRICS_PORT ${port} cannot be used (${err.code}): ` +
				`set another METRICS_PORT, or 0 to turn metrics off`
		);
	});
	server.once("listening", () => {
		if (port !== first)
			broker.logger.info(
				`Metrics port ${first} is taken: serving /metrics on port ${port} instead ` +
					`(set METRICS_PORT to choose one)`
			);
	});
}

/** Errors worth another try: the callee was unreachable or timed out, not a refusal. */
function isRetryable(err: Error): boolean {
	return Boolean((err as Errors.MoleculerRetryableError).retryable);
}

/**
 * Gives credentials from named variables to the NATS transporter. It reads `user`/`pass` only from
 * its `url` (overwriting any given beside it), so the url becomes the `servers` list it stands for.
 */
function applyNatsAuth(broker: ServiceBroker): void {
	const opts = natsClientOptions(broker);
	if (!opts || Object.keys(appConfig.natsAuth).length === 0) return;
	if (typeof opts.url === "string") {
		opts.servers = opts.url.split(",").map(url => new URL(url.trim()).host);
		delete opts.url;
	}
	Object.assign(opts, appConfig.natsAuth);
}

/**
 * A node announces its services as soon as they have started, not a second later (Moleculer's
 * default debounce): until the shows nodes know a new gateway, their `shows.changed` events skip it.
 * Moleculer 0.15 reads this option but its types leave it out (test/unit/broker-announce.test.ts).
 */
const ANNOUNCE_AT_ONCE = { serviceChangedDebounceTime: 0 } as unknown as BrokerOptions["transit"];

const brokerConfig: BrokerOptions = {
	namespace: process.env.NAMESPACE || "theatre",
	nodeID: process.env.NODE_ID || undefined,
	transporter: appConfig.transporter as BrokerOptions["transporter"],
	logger: {
		type: "Console",
		options: { level: appConfig.logLevel as "info", formatter: "short" }
	},

	// A step of a checkout that hears nothing within this time fails, so nothing hangs. The gateway
	// gives a checkout a larger budget that nested calls share.
	requestTimeout: appConfig.requestTimeoutMs,

	// Retries are safe because every step is idempotent by its checkout id. They cover a lost packet
	// or a node that just died; `check` leaves refusals (4xx) alone.
	retryPolicy: {
		enabled: true,
		retries: 2,
		delay: 100,
		maxDelay: 1000,
		factor: 2,
		check: isRetryable
	},

	// A node that keeps failing is skipped for a while instead of being waited on by every checkout.
	// Client errors (4xx) never trip it.
	circuitBreaker: {
		enabled: true,
		threshold: 0.5,
		minRequestCount: 20,
		windowTime: 60,
		halfOpenTime: 5 * 1000,
		check: (err: Error) => (err as Errors.MoleculerError).code >= 500
	},

	// A node that dies without saying goodbye (SIGKILL, lost network) is noticed within
	// heartbeatTimeout; until then calls routed to it fail fast with a retryable error.
	heartbeatInterval: 2,
	heartbeatTimeout: 8,
	transit: ANNOUNCE_AT_ONCE,

	// Writes for one show are sharded to one node (see shows.service.ts). Preferring a local
	// instance would bypass that routing, so every call goes through the balancer.
	registry: { strategy: "RoundRobin", preferLocal: false },

	metrics: {
		enabled: appConfig.metricsPort > 0,
		reporter: {
			type: "Prometheus",
			options: { port: appConfig.metricsPort, path: "/metrics" }
		}
	},

	// A taken metrics port would crash the node with an unhandled 'error' event. The default port
	// moves up to the next free one, so that several `npm start -- --instances N` groups share a
	// host; a port the operator set stops the node with a message that says what to do.
	// moleculer-runner replaces the `transporter` option with the TRANSPORTER variable as it is, so
	// credentials from named variables are given to the NATS transporter here, before it connects.
	created(broker) {
		applyNatsAuth(broker);
		const reporters = (broker.metrics as unknown as { reporter?: MetricsReporter[] }).reporter;
		for (const reporter of reporters ?? [])
			if (reporter.server) {
				moveMetricsPortWhenTaken(broker, reporter.server, reporter.opts);
				closeMetricsServerOnce(reporter, reporter.server);
			}
	},

	// A second process on an embedded store stops at once; every call and event says the sender's
	// schema version in its meta, for rolling upgrades.
	middlewares: [embeddedStoreGuard, schemaVersionMiddleware, natsReconnects],

	// Operator commands for `npm run repl`: shows, reservations, holds, add-show, resize, cancel.
	replOptions: { customCommands: replCommands },

	tracing: {
		enabled: appConfig.tracing,
		exporter: { type: "Console", options: {} }
	}
};

export default brokerConfig;
