/**
 * A clean stop logs no error. In a moleculer-runner `--instances` group the primary's
 * `cluster.disconnect()` closes each worker's metrics server while the worker's broker is stopping;
 * here that server is closed the same way, under a broker built from the real configuration.
 * (test/integration/readme.test.ts stops real groups as the README says.)
 */
import type { Server } from "node:http";
import { ServiceBroker } from "moleculer";
import brokerConfig from "../../moleculer.config";

it("a node whose metrics server its group already closed stops without logging an error", async () => {
	const broker = new ServiceBroker({
		...brokerConfig,
		nodeID: "node-shutdown-test",
		transporter: null,
		logger: false,
		metrics: { enabled: true, reporter: { type: "Prometheus", options: { port: 0 } } }
	});
	const errors = jest.spyOn(broker.logger, "error");
	await broker.start();
	const [reporter] = (broker.metrics as unknown as { reporter: { server: Server }[] }).reporter;
	if (!reporter.server.listening) await new Promise(r => reporter.server.once("listening", r));
	await new Promise(r => reporter.server.close(r));
	await broker.stop();
	expect(errors.mock.calls).toEqual([]);
});
