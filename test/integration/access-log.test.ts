/**
 * The access log is buffered, yet a process that crashes (an uncaught exception) or stops still
 * writes the lines it had buffered: run against the built module in a process of its own.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";

const MODULE = path.resolve(__dirname, "..", "..", "dist", "lib", "gateway", "access-log.js");

function runChild(ending: string): { stdout: string; status: number | null } {
	const script = `
		const { accessLog } = require(${JSON.stringify(MODULE)});
		accessLog.line("GET / 200 0.1ms");
		accessLog.line("POST /reserve 201 3.0ms");
		${ending}
	`;
	const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
	return { stdout: child.stdout, status: child.status };
}

it("writes its buffered lines when the process crashes on an uncaught exception", () => {
	const { stdout, status } = runChild(`setTimeout(() => { throw new Error("boom"); }, 0);`);
	expect(status).not.toBe(0);
	expect(stdout).toContain("GET / 200 0.1ms");
	expect(stdout).toContain("POST /reserve 201 3.0ms");
});

it("writes its buffered lines when the process exits", () => {
	const { stdout, status } = runChild(`process.exit(0);`);
	expect(status).toBe(0);
	expect(stdout).toContain("POST /reserve 201 3.0ms");
});
