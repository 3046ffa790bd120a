/**
 * Debian's nginx (.ci/run installs it) on a free loopback port, for the tests and the bench: an
 * unprivileged process with a main configuration of its own (pid, log and temp folders in a fresh
 * folder) around the http-context text it is given. `oneNodeConfig` is the one shipped for an
 * on-sale (deploy/nginx-one-node.conf), filled in.
 */
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { freePort, runServer } = require("./servers");

const NGINX = "/usr/sbin/nginx";
const ONE_NODE = path.join(__dirname, "..", "deploy", "nginx-one-node.conf");

/** deploy/nginx-one-node.conf in front of `appAddress` (host:port), listening on loopback `port`. */
function oneNodeConfig(appAddress, port) {
	return fs
		.readFileSync(ONE_NODE, "utf8")
		.replaceAll("${APP_ADDRESS}", appAddress)
		.replaceAll("${LISTEN}", `127.0.0.1:${port}`);
}

/**
 * nginx serving `httpConfig(port)` on a free port. `connections` per worker: each open file counts
 * twice when nginx proxies it, so the workers raise their own limit to match.
 */
async function startNginx(httpConfig, { workers = "auto", connections = 1024 } = {}) {
	if (!fs.existsSync(NGINX))
		throw new Error(`${NGINX} is needed: apt-get install nginx (.ci/run installs it)`);
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nginx-"));
	// nginx started as root runs its workers as another user, which must reach the temp folders.
	fs.chmodSync(dir, 0o755);
	const port = await freePort();
	const config = path.join(dir, "nginx.conf");
	const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
		.map(kind => `    ${kind}_temp_path ${dir}/${kind};`)
		.join("\n");
	fs.writeFileSync(
		config,
		[
			"daemon off;",
			`worker_processes ${workers};`,
			`worker_rlimit_nofile ${connections * 2 + 64};`,
			`pid ${dir}/nginx.pid;`,
			`error_log ${dir}/error.log warn;`,
			`events { worker_connections ${connections}; }`,
			"http {",
			"    access_log off;",
			temp,
			httpConfig(port),
			"}",
			""
		].join("\n")
	);
	execFileSync(NGINX, ["-t", "-q", "-p", dir, "-c", config], { stdio: "pipe" });
	const server = await runServer("nginx", NGINX, ["-p", dir, "-c", config], port);
	const errorLog = path.join(dir, "error.log");
	return {
		...server,
		baseUrl: `http://127.0.0.1:${port}`,
		errorLog: () => (fs.existsSync(errorLog) ? fs.readFileSync(errorLog, "utf8") : ""),
		stop: async () => {
			await server.stop("SIGQUIT");
			fs.rmSync(dir, { recursive: true, force: true });
		}
	};
}

module.exports = { oneNodeConfig, startNginx };
