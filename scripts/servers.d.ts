export interface ServerHandle {
	port: number;
	stop(signal?: NodeJS.Signals): Promise<void>;
	kill(): Promise<void>;
	restart(): Promise<void>;
	/** The process is up (not stopped, killed or exited). */
	running(): boolean;
	/** The process id of its latest start. */
	pid(): number | undefined;
	log(): string;
}
export function ensureBinary(
	name: "nats-server" | "ferretdb" | "docker-compose" | "toxiproxy"
): string;
export function ensureBinaries(): string[];
export function freePort(): Promise<number>;
export type NatsAuth = { user: string; password: string; token?: undefined } | { token: string };
export function startNats(options?: { auth?: NatsAuth }): Promise<ServerHandle & { url: string }>;
export interface NatsClusterServer extends ServerHandle {
	url: string;
	clusterPort: number;
	monitorPort: number;
	/** How many other servers it has a route to now. */
	peers(): Promise<number>;
	/** How many client connections it has now. */
	clients(): Promise<number>;
}
export interface NatsCluster {
	servers: NatsClusterServer[];
	/** Every server's client URL, comma-separated (a TRANSPORTER). */
	url: string;
	routed(timeoutMs?: number): Promise<void>;
	stop(): Promise<void[]>;
}
export function startNatsCluster(
	size: number,
	options?: { routeVia?: (from: number, to: number, clusterPort: number) => Promise<string> }
): Promise<NatsCluster>;
export function startFerretDB(): Promise<ServerHandle & { uri: string }>;
export function startToxiproxy(): Promise<ServerHandle & { apiUrl: string }>;
export const BIN_DIR: string;
