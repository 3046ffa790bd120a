/**
 * Tools for looking at a running cluster from a test: an operator node on the cluster's NATS (as
 * the REPL joins it), direct reads of the MongoDB-wire stores, and each node's Prometheus metrics.
 */
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { MongoClient } from "mongodb";
import type { Cluster } from "./system";

export async function operatorNode(cluster: Cluster): Promise<ServiceBroker> {
	const broker = new ServiceBroker({
		namespace: cluster.env.NAMESPACE,
		nodeID: `probe-${process.pid}`,
		transporter: cluster.env.TRANSPORTER as BrokerOptions["transporter"],
		logger: false,
		requestTimeout: 10000,
		heartbeatInterval: 2,
		heartbeatTimeout: 8,
		retryPolicy: { enabled: true, retries: 3, delay: 200 }
	});
	await broker.start();
	await broker.waitForServices(["shows", "reservations"], 30000);
	return broker;
}

export async function openStores(cluster: Cluster) {
	const client = new MongoClient(cluster.env.MONGO_URI, { useUnifiedTopology: true } as object);
	await client.connect();
	const prefix = cluster.env.MONGO_DB_PREFIX ?? "";
	return {
		client,
		shows: client.db(`${prefix}shows`).collection("shows"),
		reservations: client.db(`${prefix}reservations`).collection("reservations"),
		close: () => client.close()
	};
}

/** Sum of a Prometheus counter on one node, over the series whose labels contain `match`. */
export async function counterOnNode(port: number, metric: string, match: string): Promise<number> {
	const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
	return text
		.split("\n")
		.filter(line => line.startsWith(`${metric}{`) && line.includes(match))
		.reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}
