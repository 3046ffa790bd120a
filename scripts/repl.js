#!/usr/bin/env node
/**
 * `npm run repl`: an operator node with the Moleculer REPL. With TRANSPORTER set it joins that
 * cluster and runs no services of its own; without, it runs the whole system in this process on the
 * embedded stores, like `npm start`.
 */
"use strict";

const path = require("node:path");
const { Runner } = require("moleculer");

const root = path.resolve(__dirname, "..");
if (process.env.TRANSPORTER) {
	delete process.env.SERVICEDIR;
	delete process.env.SERVICES;
	process.env.NODE_ID ??= `operator-${process.pid}`;
	// An operator node serves nothing: no metrics port (it would clash with a node's on this host).
	process.env.METRICS_PORT = "0";
} else {
	process.env.SERVICEDIR ??= path.join(root, "dist", "services");
}

new Runner().start([
	process.argv[0],
	__filename,
	"--config",
	path.join(root, "dist", "moleculer.config.js"),
	"--repl"
]);
