/**
 * What the project uses of Moleculer's NATS transporter beyond its documented options
 * (lib/common/moleculer-internals.ts), pinned to the releases it was read from. The real reconnect
 * is in test/integration/partitions.test.ts (a node's link to NATS cut and healed).
 */
import fs from "node:fs";
import path from "node:path";
import { ServiceBroker } from "moleculer";
import {
	natsClientOptions,
	natsReconnects,
	PINNED_MOLECULER,
	PINNED_NATS,
	watchNatsReconnects
} from "../../lib/common/moleculer-internals";

/** A package's installed version (moleculer's exports map hides its package.json from require). */
const versionOf = (name: string) =>
	JSON.parse(
		fs.readFileSync(path.join(path.dirname(require.resolve(name)), "package.json"), "utf8")
	).version;

/** A broker as far as the adapter looks at it, its NATS client reporting `statuses`. */
function brokerWithClient(statuses: string[]) {
	const local: [string, unknown][] = [];
	const broker = {
		transit: {
			tx: {
				client: {
					async *status() {
						for (const type of statuses) yield { type };
					}
				}
			}
		},
		logger: { info: () => undefined, warn: () => undefined },
		broadcastLocal: (event: string, payload: unknown) => void local.push([event, payload])
	} as unknown as ServiceBroker;
	return { broker, local };
}

describe("Moleculer's NATS transporter, as the project uses it", () => {
	it("is the release the adapter was read from", () => {
		expect(versionOf("moleculer")).toBe(PINNED_MOLECULER);
		expect(versionOf("nats")).toBe(PINNED_NATS);
	});

	it("keeps the options its NATS client connects with where the adapter reads them", async () => {
		const broker = new ServiceBroker({
			transporter: { type: "NATS", options: { url: "nats://127.0.0.1:4222" } },
			logger: false
		});
		expect(natsClientOptions(broker)).toMatchObject({ url: "nats://127.0.0.1:4222" });
		expect(natsClientOptions(new ServiceBroker({ logger: false }))).toBeUndefined();
	});

	it("sees each reconnect of the NATS client, and nothing else", async () => {
		const { broker } = brokerWithClient(["disconnect", "reconnecting", "reconnect", "update"]);
		let reconnects = 0;
		await watchNatsReconnects(broker, () => reconnects++);
		expect(reconnects).toBe(1);
	});

	it("tells the node's services of a reconnect as Moleculer tells them of a connect", async () => {
		const { broker, local } = brokerWithClient(["disconnect", "reconnect"]);
		await natsReconnects.started!.call(natsReconnects, broker);
		await new Promise(resolve => setImmediate(resolve));
		expect(local).toEqual([["$transporter.connected", { wasReconnect: true }]]);
	});
});
