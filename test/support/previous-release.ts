/**
 * The release users run today, checked out beside this one so that a test can run its nodes in the
 * same cluster as ours (test/integration/rolling-upgrade.test.ts). It runs from a detached git
 * worktree, with this repository's node_modules (its runtime dependencies must be the same
 * versions) and a dist/ built by its own build script.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

/**
 * The predecessor this release must run beside: the one place that names it. Each release moves
 * it forward to the commit of the release before it, so that every release is tested against its
 * predecessor.
 */
export const PREVIOUS_RELEASE = "c4d7bfb";

const ROOT = path.resolve(__dirname, "..", "..");
const run = promisify(execFile);

async function git(...args: string[]): Promise<string> {
	return (await run("git", args, { cwd: ROOT })).stdout;
}

export interface PreviousRelease {
	ref: string;
	/** The worktree, with its dist/ built: give it to `cluster.add({ root })`. */
	root: string;
	remove(): Promise<void>;
}

/** Runtime dependencies as a package.json names them, in a stable order. */
function runtimeDependencies(packageJson: string): string {
	const deps = (JSON.parse(packageJson) as { dependencies?: Record<string, string> })
		.dependencies;
	return JSON.stringify(Object.entries(deps ?? {}).sort(([a], [b]) => a.localeCompare(b)));
}

/** Checks out and builds the previous release; `remove` takes its worktree away again. */
export async function checkoutPreviousRelease(
	ref: string = PREVIOUS_RELEASE
): Promise<PreviousRelease> {
	try {
		await git("cat-file", "-e", `${ref}^{commit}`);
	} catch {
		throw new Error(
			`The previous release ${ref} is not in this clone's history, so the rolling-upgrade ` +
				`test cannot run it: use a full clone (git fetch --unshallow).`
		);
	}
	const theirs = await git("show", `${ref}:package.json`);
	const ours = fs.readFileSync(path.join(ROOT, "package.json"), "utf8");
	if (runtimeDependencies(theirs) !== runtimeDependencies(ours))
		throw new Error(
			`The previous release ${ref} declares other runtime dependencies than this one, so it ` +
				`cannot run on this repository's node_modules: install its own there instead.`
		);

	const parent = fs.mkdtempSync(path.join(os.tmpdir(), "previous-release-"));
	const root = path.join(parent, ref);
	await git("worktree", "add", "--detach", root, ref);
	const remove = async () => {
		await git("worktree", "remove", "--force", root).catch(() => undefined);
		fs.rmSync(parent, { recursive: true, force: true });
	};
	try {
		fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(root, "node_modules"), "dir");
		await run(process.execPath, [path.join(root, "scripts", "build-if-stale.js"), "--force"], {
			cwd: root
		});
	} catch (err) {
		await remove();
		throw err;
	}
	return { ref, root, remove };
}
