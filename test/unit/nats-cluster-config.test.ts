/**
 * A NATS cluster in the configuration: TRANSPORTER as a comma-separated list of servers, alone or
 * with credentials from named variables (NATS_USER/NATS_PASSWORD), as the NATS client gets them.
 */
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { ConfigError, loadAppConfig } from "../../lib/common/config";

const LIST = "nats://a.example:4222,nats://b.example:4223, nats://c.example:4224";

/** The options the NATS transporter connects with, for a broker built from moleculer.config.ts. */
function natsOptions(env: Record<string, string>): Record<string, unknown> {
	const saved = { ...process.env };
	Object.assign(process.env, env, { METRICS_PORT: "0" });
	try {
		let config: BrokerOptions | undefined;
		jest.isolateModules(() => {
			config = (require("../../moleculer.config") as { default: BrokerOptions }).default;
		});
		const broker = new ServiceBroker({ ...config, logger: false });
		const tx = (broker.transit as unknown as { tx: { opts: Record<string, unknown> } }).tx;
		return tx.opts;
	} finally {
		process.env = saved;
	}
}

describe("TRANSPORTER naming the servers of a NATS cluster", () => {
	it("takes a comma-separated list of nats:// URLs", () => {
		expect(loadAppConfig({ TRANSPORTER: LIST }, []).transporter).toBe(LIST);
	});

	it.each([
		["a server without nats://", "nats://a.example:4222,b.example:4222"],
		["an empty entry", "nats://a.example:4222,,nats://b.example:4222"],
		["a trailing comma", "nats://a.example:4222,"],
		["another scheme", "nats://a.example:4222,http://b.example:4222"],
		["an entry that is no URL", "nats://a.example:4222,nats://"]
	])("refuses a list with %s, naming the entry", (_what, list) => {
		expect(() => loadAppConfig({ TRANSPORTER: list }, [])).toThrow(ConfigError);
		expect(() => loadAppConfig({ TRANSPORTER: list }, [])).toThrow(/entry 2/);
	});

	it.each([
		["nats://u:hunter2@a.example:4222,tcp://u:hunter2@b.example:4222", "hunter2"],
		["nats://u:hunt,er2@a.example:4222,nats://b.example:4222", "hunt"]
	])("never repeats a password from a bad list: %s", (list, secret) => {
		expect(() => loadAppConfig({ TRANSPORTER: list }, [])).toThrow(
			expect.objectContaining({ message: expect.not.stringContaining(secret) })
		);
	});

	it("gives the NATS client every server of the list", () => {
		const opts = natsOptions({ TRANSPORTER: LIST });
		expect(opts.url).toBe(LIST);
	});

	it("gives credentials from NATS_USER/NATS_PASSWORD with every server of the list", () => {
		const opts = natsOptions({ TRANSPORTER: LIST, NATS_USER: "tickets", NATS_PASSWORD: "pw" });
		expect(opts).toMatchObject({
			servers: ["a.example:4222", "b.example:4223", "c.example:4224"],
			user: "tickets",
			pass: "pw"
		});
		expect(opts.url).toBeUndefined();
	});
});
