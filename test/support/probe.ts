/**
 * Tools for looking at a running cluster from a test: an operator node on the cluster's NATS (as
 * the REPL joins it), direct reads of the MongoDB-wire stores, and each node's Prometheus metrics.
 */
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { MongoClient, ObjectId } from "mongodb";
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
	const reservationsDb = client.db(`${prefix}reservations`);
	const showsDb = client.db(`${prefix}shows`);
	const stores = {
		client,
		shows: showsDb.collection("shows"),
		showSales: showsDb.collection("show_sales"),
		showReleases: showsDb.collection("show_releases"),
		reservations: reservationsDb.collection("reservations"),
		reservationStates: reservationsDb.collection("reservation_states"),
		openCheckouts: reservationsDb.collection("open_checkouts"),
		seatReleases: reservationsDb.collection("seat_releases"),
		/** Every reservation with the status its stored facts give it (see reservations.service). */
		async reservationsWithStatus(query: object = {}) {
			const bookings = await stores.reservations.find(query).toArray();
			const facts = await stores.reservationStates.find({}).toArray();
			const byId = new Map(facts.map(f => [f._id as string, f]));
			return bookings.map(b => ({
				...b,
				status:
					(byId.get(`${b._id}:canceled`) && "canceled") ||
					byId.get(`${b._id}:outcome`)?.status ||
					"pending"
			}));
		},
		/**
		 * A show's document and the checkouts whose seats it counts as sold: settled sales not
		 * given back, plus confirmed holds still in the document (see lib/shows/show-seats.ts).
		 */
		async seatsOf(showID: string) {
			const show = await stores.shows.findOne({ _id: new ObjectId(showID) });
			const sales = await stores.showSales.find({ showID }).toArray();
			const released = new Set(
				[
					...(await stores.showReleases.find({ showID }).toArray()).map(r => r._id),
					...(show.releasing ?? []).map((r: { id: string }) => r.id)
				].map(String)
			);
			const settled = sales.filter(s => !released.has(String(s._id)));
			const confirmedInDoc = show.holds.filter((h: any) => h.state === "confirmed");
			const liveHolds = show.holds.filter((h: any) => h.state === "held");
			return {
				show,
				liveHolds,
				soldIds: new Set<string>([
					...settled.map(s => String(s._id)),
					...confirmedInDoc.map((h: any) => h.id as string)
				]),
				soldSeats:
					settled.reduce((sum, s) => sum + s.count, 0) +
					confirmedInDoc.reduce((sum: number, h: any) => sum + h.count, 0)
			};
		},
		close: () => client.close()
	};
	return stores;
}

/** Sum of a Prometheus counter on one node, over the series whose labels contain `match`. */
export async function counterOnNode(port: number, metric: string, match: string): Promise<number> {
	const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
	return text
		.split("\n")
		.filter(line => line.startsWith(`${metric}{`) && line.includes(match))
		.reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
}
