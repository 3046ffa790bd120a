/**
 * What single operations cost on the tests' MongoDB-wire store (FerretDB 1.24, SQLite backend) as
 * a collection grows: an insert, a lookup by `_id` of the oldest and of the newest document, a
 * lookup that finds nothing, and a delete by `_id`. Explains the cluster's scale table
 * (docs/performance.md).
 *
 *   node bench/ferretdb-ops.js [sizes, default 100,10000,30000]
 */
"use strict";

const { startFerretDB } = require("../scripts/servers");

async function main() {
	const sizes = (process.argv[2] ?? "100,10000,30000").split(",").map(Number);
	const { MongoClient } = require("mongodb");
	const ferret = await startFerretDB();
	let client;
	try {
		client = await MongoClient.connect(ferret.uri, { useUnifiedTopology: true });
		const facts = client.db("bench").collection("facts");
		const time = async (n, op) => {
			const started = process.hrtime.bigint();
			for (let i = 0; i < n; i++) await op(i);
			return (Number(process.hrtime.bigint() - started) / 1e6 / n).toFixed(2);
		};
		let size = 0;
		const rows = [];
		for (const [round, target] of sizes.entries()) {
			while (size < target) {
				const batch = [];
				for (let i = 0; i < 1000 && size < target; i++, size++)
					batch.push({ _id: `old-${size}:outcome`, status: "confirmed", at: 1 });
				await facts.insertMany(batch);
			}
			const fresh = i => `new-${round}-${i}:outcome`;
			rows.push({
				documents: size,
				"insert ms": await time(50, i => facts.insertOne({ _id: fresh(i), status: "x" })),
				"findOne(_id) oldest ms": await time(50, i =>
					facts.findOne({ _id: `old-${i}:outcome` })
				),
				"findOne(_id) newest ms": await time(50, i => facts.findOne({ _id: fresh(i) })),
				"findOne(_id) missing ms": await time(20, i => facts.findOne({ _id: `none-${i}` })),
				"deleteOne(_id) ms": await time(50, i => facts.deleteOne({ _id: fresh(i) }))
			});
		}
		console.table(rows);
	} finally {
		await client?.close();
		await ferret.stop();
	}
}

main().catch(err => {
	console.error(err);
	process.exitCode = 1;
});
