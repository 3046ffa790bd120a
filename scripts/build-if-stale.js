#!/usr/bin/env node
/**
 * Compiles the TypeScript sources to dist/ when dist/ is missing or older than a source (always with
 * `--force`), so that
 * `npm start` works on a fresh clone and starting several processes at once does not rebuild
 * under the feet of the ones already starting. Concurrent callers wait for one build.
 */
"use strict";

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const SOURCES = [
	"moleculer.config.ts",
	"services",
	"mixins",
	"lib",
	"tsconfig.json",
	"tsconfig.build.json"
];
const STAMP = path.join(ROOT, "dist", ".built");
const LOCK = path.join(ROOT, ".build-lock");
const LOCK_STALE_MS = 5 * 60 * 1000;

function newestSource(entry) {
	const full = path.join(ROOT, entry);
	const stat = fs.statSync(full);
	if (!stat.isDirectory()) return stat.mtimeMs;
	return fs
		.readdirSync(full)
		.reduce(
			(newest, name) => Math.max(newest, newestSource(path.join(entry, name))),
			stat.mtimeMs
		);
}

function isFresh() {
	if (!fs.existsSync(STAMP)) return false;
	const built = fs.statSync(STAMP).mtimeMs;
	return SOURCES.every(entry => newestSource(entry) <= built);
}

function sleep(ms) {
	Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function withLock(task) {
	for (;;) {
		try {
			fs.mkdirSync(LOCK);
			break;
		} catch (err) {
			if (err.code !== "EEXIST") throw err;
			// A builder that died leaves its lock behind; take it over after a while.
			if (Date.now() - fs.statSync(LOCK).mtimeMs > LOCK_STALE_MS)
				fs.rmSync(LOCK, { recursive: true, force: true });
			sleep(200);
		}
	}
	try {
		task();
	} finally {
		fs.rmSync(LOCK, { recursive: true, force: true });
	}
}

function build(force) {
	if (!force && isFresh()) return;
	withLock(() => {
		if (!force && isFresh()) return; // someone else built it while we waited
		fs.rmSync(path.join(ROOT, "dist"), { recursive: true, force: true });
		execFileSync(
			process.execPath,
			[require.resolve("typescript/bin/tsc"), "-p", "tsconfig.build.json"],
			{
				cwd: ROOT,
				stdio: "inherit"
			}
		);
		fs.writeFileSync(STAMP, new Date().toISOString());
	});
}

// `--force`: build even when dist/ looks fresh (npm run build).
if (require.main === module) build(process.argv.includes("--force"));

/** What compiles into dist/ (bench/procs.js builds a given commit from the same list). */
module.exports = { SOURCES };
