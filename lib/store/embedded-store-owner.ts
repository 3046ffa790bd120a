/**
 * Which live process holds an embedded store's lock (mixins/db.mixin.ts writes `LOCK` with its pid
 * into each store's folder), so that a second process on the same `DATA_DIR` can stop with one plain
 * line before it starts anything.
 */
import fs from "node:fs";
import path from "node:path";

export interface StoreOwner {
	/** The store's folder. */
	folder: string;
	pid: number;
}

export function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		// EPERM: the process exists, it just belongs to another user.
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}

/** The first of `stores` (folders under `dataDir`) that another live process holds, if any. */
export function embeddedStoreOwner(dataDir: string, stores: string[]): StoreOwner | null {
	for (const store of stores) {
		const folder = path.join(dataDir, store);
		let pid: number;
		try {
			pid = Number(fs.readFileSync(path.join(folder, "LOCK"), "utf8"));
		} catch {
			continue;
		}
		if (pid && pid !== process.pid && isAlive(pid)) return { folder, pid };
	}
	return null;
}
