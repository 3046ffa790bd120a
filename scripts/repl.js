#!/usr/bin/env node
/**
 * `npm run repl`: an operator node with the Moleculer REPL. With TRANSPORTER set it joins that
 * cluster and runs no services of its own; without, it runs the whole system in this process on the
 * embedded stores, like `npm start -- --repl`. A running embedded system cannot be joined (it has no
 * transporter), so beside one this says what to do in one line instead of failing on the store lock.
 */
"use strict";

const path = require("node:path");
const { Runner } = require("moleculer");

const root = path.resolve(__dirname, "..");
// Built by `npm run repl` before this script runs.
const { embeddedStoreOwner } = require(
	path.join(root, "dist", "lib", "store", "embedded-store-owner.js")
);
if (process.env.TRANSPORTER) {
	delete process.env.SERVICEDIR;
	delete process.env.SERVICES;
	process.env.NODE_ID ??= `operator-${process.pid}`;
	// An operator node serves nothing: no metrics port (it would clash with a node's on this host).
	process.env.METRICS_PORT = "0";
} else {
	const dataDir = path.resolve(process.env.DATA_DIR || "./data");
	const owner = embeddedStoreOwner(dataDir, ["shows", "reservations"]);
	if (owner) {
		console.error(
			`The embedded system in ${dataDir} is running in process ${owner.pid}; an embedded ` +
				`system cannot be joined: start it with \`npm start -- --repl\` to get its REPL, or run ` +
				`a cluster (TRANSPORTER=nats://…) and join it with \`npm run repl\`.`
		);
		process.exit(1);
	}
	process.env.SERVICEDIR ??= path.join(root, "dist", "services");
}

// The REPL opens once this node's broker runs and, in a cluster, once shows and reservations are
// reachable, so that the first command does not meet "service not found".
const runner = new Runner();
runner
	.start([
		process.argv[0],
		__filename,
		"--config",
		path.join(root, "dist", "moleculer.config.js")
	])
	.then(async () => {
		const broker = runner.broker;
		if (!broker) return;
		await broker
			.waitForServices(["shows", "reservations"], 15000)
			.catch(() =>
				broker.logger.warn(
					"shows and reservations are not reachable yet; their commands answer once they join"
				)
			);
		broker.repl();
	});
