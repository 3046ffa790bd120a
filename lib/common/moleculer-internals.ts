/**
 * Everything the project uses of Moleculer's NATS transporter beyond its documented options, in one
 * place: its options as the NATS client gets them, and its client's status. An upgrade that changes
 * either fails test/unit/moleculer-internals.test.ts, pinned to the versions below.
 *
 * Moleculer 0.15's transporter for nats 2.x never tells the broker that its client reconnected:
 * the client restores its subscriptions by itself, drops what it could not send meanwhile, and
 * `$transporter.connected` comes only at the first connect. `natsReconnects` broadcasts it locally,
 * with `wasReconnect: true`, on every reconnect, so that a node can make up for what it missed.
 */
import type { Middleware, ServiceBroker } from "moleculer";

/** The releases these internals were read from. */
export const PINNED_MOLECULER = "0.15.2";
export const PINNED_NATS = "2.29.3";

interface NatsStatus {
	type: string;
}

interface NatsTransporter {
	opts?: Record<string, unknown>;
	client?: { status(): AsyncIterable<NatsStatus> };
}

function natsTransporter(broker: ServiceBroker): NatsTransporter | undefined {
	return (broker.transit as unknown as { tx?: NatsTransporter } | undefined)?.tx;
}

/** The options the NATS client will connect with (read once it connects), if NATS is the transporter. */
export function natsClientOptions(broker: ServiceBroker): Record<string, unknown> | undefined {
	return natsTransporter(broker)?.opts;
}

/** Calls `reconnected` each time the NATS client has connected again, until it closes. */
export async function watchNatsReconnects(
	broker: ServiceBroker,
	reconnected: () => void
): Promise<void> {
	const client = natsTransporter(broker)?.client;
	if (!client || typeof client.status !== "function") return;
	for await (const status of client.status()) if (status.type === "reconnect") reconnected();
}

/** The middleware that gives every node `$transporter.connected` after a NATS reconnect. */
export const natsReconnects: Middleware = {
	name: "NatsReconnects",
	async started(broker: ServiceBroker) {
		// Not awaited: it runs as long as the connection does.
		watchNatsReconnects(broker, () => {
			broker.logger.info("NATS connection is back: events sent meanwhile may be lost");
			broker.broadcastLocal("$transporter.connected", { wasReconnect: true });
		}).catch(err => broker.logger.warn(`Not watching NATS reconnects: ${String(err)}`));
	}
};
