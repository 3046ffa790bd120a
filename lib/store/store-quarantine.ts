/**
 * Lines of embedded stores that could not be read at start and were set aside in quarantine files
 * (lib/store/nedb-lines.ts), as each store node puts them in its services' registry metadata: any node
 * of the cluster can report them without calling anyone.
 */
import type { ServiceBroker } from "moleculer";

interface QuarantineReport {
	nodeID: string;
	service: string;
	quarantined: number;
	files: string[];
}

interface ListedService {
	name: string;
	nodeID: string;
	metadata?: { storeQuarantined?: unknown; storeQuarantineFiles?: unknown };
}

/** Every live store service with lines in quarantine. */
export function quarantineReports(broker: ServiceBroker): QuarantineReport[] {
	const services = broker.registry.getServiceList({
		onlyAvailable: true,
		skipInternal: true
	}) as unknown as ListedService[];
	return services
		.filter(s => typeof s.metadata?.storeQuarantined === "number")
		.map(s => ({
			nodeID: s.nodeID,
			service: s.name,
			quarantined: s.metadata!.storeQuarantined as number,
			files: Array.isArray(s.metadata!.storeQuarantineFiles)
				? (s.metadata!.storeQuarantineFiles as string[])
				: []
		}))
		.filter(r => r.quarantined > 0);
}

/** All the lines in quarantine in the cluster's embedded stores: a warning, not an outage. */
export function quarantinedLines(broker: ServiceBroker): number {
	return quarantineReports(broker).reduce((sum, r) => sum + r.quarantined, 0);
}
