/**
 * How a shows node tells the gateways what changed. Moleculer sends an event only to the nodes that
 * this node already knows listen for it, so a gateway that has just started (or come back) missed
 * whatever this node wrote before that gateway's announcement reached it. Once it is known, it is
 * told to read its list again (`shows.resync`, naming it), unless this node had sent nothing yet.
 * When this node's own link comes back, what it sent while the link was down is lost (the NATS
 * client drops what it could not send when it reconnects): every gateway it knows re-reads.
 */
import type { Context, ServiceBroker } from "moleculer";
import type { ShowState } from "../common/types";

export const SHOW_CHANGED = "shows.changed";
export const SHOWS_RESYNC = "shows.resync";

/** A node as Moleculer's `$node.*` events carry it: its id and the services it announced. */
export interface AnnouncedNode {
	id: string;
	services?: { events?: Record<string, unknown> }[];
}

export interface ChangeListeners {
	/** Tells every gateway this node knows of that a show changed. */
	changed(state: ShowState): void;
	/** A node was announced (new, back, or with other services): resync it if it newly listens. */
	announced(node: AnnouncedNode): void;
	/** A node left: when it is announced again, it will have missed what was sent meanwhile. */
	left(nodeID: string): void;
	/** This node's link to the others is back after it was lost. */
	reconnected(): void;
}

export function createChangeListeners(broker: ServiceBroker): ChangeListeners {
	const listening = new Set<string>();
	let sent = false;
	return {
		changed(state) {
			sent = true;
			broker.broadcast(SHOW_CHANGED, state);
		},
		announced(node) {
			const listens = (node.services ?? []).some(s => s.events && SHOW_CHANGED in s.events);
			if (!listens) listening.delete(node.id);
			if (!listens || listening.has(node.id)) return;
			listening.add(node.id);
			if (sent) broker.broadcast(SHOWS_RESYNC, { nodeIDs: [node.id] });
		},
		left(nodeID) {
			listening.delete(nodeID);
		},
		reconnected() {
			if (sent && listening.size > 0)
				broker.broadcast(SHOWS_RESYNC, { nodeIDs: [...listening] });
		}
	};
}

type NodeEvent = Context<{ node: AnnouncedNode }>;

/** The `$node.*` handlers that the shows service spreads among its events. */
export const changeListenerEvents = {
	"$node.connected"(this: { changeListeners: ChangeListeners }, ctx: NodeEvent) {
		this.changeListeners.announced(ctx.params.node);
	},
	"$node.updated"(this: { changeListeners: ChangeListeners }, ctx: NodeEvent) {
		this.changeListeners.announced(ctx.params.node);
	},
	"$node.disconnected"(this: { changeListeners: ChangeListeners }, ctx: NodeEvent) {
		this.changeListeners.left(ctx.params.node.id);
	},
	"$transporter.connected"(
		this: { changeListeners: ChangeListeners },
		ctx: Context<{ wasReconnect: boolean }>
	) {
		if (ctx.params.wasReconnect) this.changeListeners.reconnected();
	}
};
