/**
 * A node's services are known to the others as soon as its broker has started: the broker options
 * of moleculer.config.ts turn off Moleculer's one-second debounce of that announcement (an option
 * its types leave out, so this pins it to the Moleculer release in use).
 */
import { ServiceBroker, type BrokerOptions } from "moleculer";

function brokerConfig(): BrokerOptions {
	const saved = { ...process.env };
	Object.assign(process.env, { METRICS_PORT: "0", TRANSPORTER: "" });
	try {
		let config: BrokerOptions | undefined;
		jest.isolateModules(() => {
			config = (require("../../moleculer.config") as { default: BrokerOptions }).default;
		});
		return config!;
	} finally {
		process.env = saved;
	}
}

describe("moleculer.config.ts: announcing a node", () => {
	const brokers: ServiceBroker[] = [];
	const broker = (nodeID: string, options: Partial<BrokerOptions>) => {
		const started = new ServiceBroker({
			...options,
			nodeID,
			namespace: `announce-${process.pid}`,
			transporter: "Fake",
			logger: false,
			metrics: false
		});
		brokers.push(started);
		return started;
	};

	afterEach(async () => {
		await Promise.all(brokers.splice(0).map(b => b.stop()));
	});

	async function knownListenerRightAfterStart(options: Partial<BrokerOptions>) {
		const shows = broker("shows-node", options);
		await shows.start();
		const gateway = broker("gateway-node", options);
		gateway.createService({ name: "api", events: { "shows.changed"() {} } });
		await gateway.start();
		await new Promise(resolve => setTimeout(resolve, 50));
		return shows.registry.events
			.getAllEndpoints("shows.changed")
			.some((ep: { id: string }) => ep.id === "gateway-node");
	}

	it("makes a gateway's event listeners known to the other nodes as soon as it has started", async () => {
		const { transit, heartbeatInterval, heartbeatTimeout } = brokerConfig();
		expect(
			await knownListenerRightAfterStart({ transit, heartbeatInterval, heartbeatTimeout })
		).toBe(true);
	});

	it("would not with Moleculer's default, which waits a second", async () => {
		expect(await knownListenerRightAfterStart({})).toBe(false);
	});
});
