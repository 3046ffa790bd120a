/**
 * NeDB appends each write to its file with `fs.promises.appendFile`, which opens, writes and closes
 * the file every time: under a busy checkout load, a quarter of the embedded node's CPU went to
 * opening and closing (profile in docs/performance.md). This keeps one append handle per file
 * instead. NeDB runs every persistence step through its own queue, one at a time, so appends never
 * race each other or a compaction; a compaction writes a new file and renames it over the old one,
 * so the handle is closed before and reopened after it.
 */
import fs from "node:fs/promises";
import { createRequire } from "node:module";

/** NeDB's own line format for a document (its `model.serialize`, which the package does not type). */
const { serialize } = createRequire(__filename)("@seald-io/nedb/lib/model.js") as {
	serialize(doc: object): string;
};

interface Persistence {
	filename: string;
	inMemoryOnly: boolean;
	afterSerialization(line: string): string;
	persistNewStateAsync(docs: object[]): Promise<void>;
	persistCachedDatabaseAsync(): Promise<void>;
}

export function keepAppendHandleOpen(datastore: { persistence: Persistence }): {
	close(): Promise<void>;
} {
	const persistence = datastore.persistence;
	if (persistence.inMemoryOnly) return { close: async () => undefined };
	let handle: fs.FileHandle | null = null;
	const compact = persistence.persistCachedDatabaseAsync.bind(persistence);

	persistence.persistNewStateAsync = async docs => {
		if (docs.length === 0) return;
		const text = docs
			.map(doc => persistence.afterSerialization(serialize(doc)) + "\n")
			.join("");
		handle ??= await fs.open(persistence.filename, "a");
		await handle.appendFile(text, "utf8");
	};
	persistence.persistCachedDatabaseAsync = async () => {
		await handle?.close();
		handle = null;
		await compact();
	};
	const appender = {
		async close() {
			await handle?.close();
			handle = null;
		}
	};
	open.add(appender);
	return appender;
}

const open = new Set<{ close(): Promise<void> }>();

/** Closes every append handle of this process (a service stopping its stores). */
export async function closeAppendHandles(): Promise<void> {
	await Promise.all([...open].map(appender => appender.close()));
}
