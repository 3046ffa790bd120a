/**
 * Whether a process id is a live process, for the scripts and benchmarks that find stale locks and
 * folders by pid. Plain CommonJS so that `bench/` can use it too. (mixins/db.mixin.ts keeps its
 * own copy: the build compiles only TypeScript, and scripts/ is not in the built image.)
 */
"use strict";

function isAlive(pid) {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		// EPERM: the process exists, it just belongs to another user.
		return err.code === "EPERM";
	}
}

module.exports = { isAlive };
